"""The camera loop with an injected clock and opener: backoff, reset, stop — no real waiting."""

from __future__ import annotations

import threading
from pathlib import Path

from ingest.source import SourceError, SourceOptions
from ingest.worker import CameraWorker, WorkerOptions
from storage.catalog import Camera
from storage.spool import Spool
from harness.fakes import FakeClock


class RecordingMonitor:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_connecting(self) -> None:
        self.calls.append("connecting")

    def on_connect_failed(self, reason: str) -> None:
        self.calls.append(f"failed:{reason}")

    def on_connected(self, run_id: str, video_stream: object) -> None:
        self.calls.append("connected")

    def on_packet(self, packet: object, arrival_mono: float) -> None:
        pass

    def on_disconnected(self, reason: str) -> None:
        self.calls.append("disconnected")

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_refused_camera_backs_off_exponentially_to_the_cap(tmp_path: Path) -> None:
    clock = FakeClock()
    attempts: list[float] = []
    worker: CameraWorker

    def opener(url: str, opts: SourceOptions):  # type: ignore[no-untyped-def]
        attempts.append(clock.monotonic())
        if len(attempts) >= 9:
            worker.stop()
        raise SourceError("cannot open rtsp://***@127.0.0.1:1/x: ConnectionRefusedError")

    mon = RecordingMonitor()
    worker = CameraWorker(
        Camera("cam", "rtsp://u:p@127.0.0.1:1/x"),
        Spool(tmp_path),
        mon,
        WorkerOptions(backoff_initial_s=1, backoff_max_s=30),
        clock=clock,
        opener=opener,
    )
    worker.backoff.rand = lambda: 1.0
    worker.run()
    assert clock.slept == [1, 2, 4, 8, 16, 30, 30, 30]
    assert mon.calls.count("connecting") == 9
    assert all(c.startswith("failed:") for c in mon.calls if c != "connecting")
    assert "u:p" not in " ".join(mon.calls)


def test_stop_interrupts_the_backoff_wait(tmp_path: Path) -> None:
    def opener(url: str, opts: SourceOptions):  # type: ignore[no-untyped-def]
        raise SourceError("refused")

    w = CameraWorker(
        Camera("cam", "rtsp://127.0.0.1:1/x"),
        Spool(tmp_path),
        RecordingMonitor(),
        WorkerOptions(backoff_initial_s=60, backoff_max_s=60),
        opener=opener,
    )
    w.start()
    w.stop()
    assert w.join(timeout=5), "a stopped camera must not sit out its backoff"
    assert isinstance(w.thread, threading.Thread)


def test_a_crashed_camera_loop_says_why(tmp_path: Path) -> None:
    """Not a connection failure but a bug or a setting nothing checked: the camera goes offline with the reason."""

    def opener(url: str, opts: SourceOptions):  # type: ignore[no-untyped-def]
        raise RuntimeError("transport 'quic' unknown")

    mon = RecordingMonitor()
    w = CameraWorker(Camera("cam", "rtsp://u:p@127.0.0.1:1/x"), Spool(tmp_path), mon, WorkerOptions(), opener=opener)
    w.start()
    assert w.join(5)
    assert mon.calls[-1] == "failed:recording stopped: RuntimeError: transport 'quic' unknown"
