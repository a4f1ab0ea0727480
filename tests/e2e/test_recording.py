"""The recording spine end to end: `vigil run` against the real GStreamer RTSP server and real
SeaweedFS S3."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import av

from storage.catalog import Segment
from storage.object_store import LocalStore, S3Store
from harness.media import ClipInfo
from harness.servers import RtspServer, SeaweedS3, free_port
from harness.vigilproc import VigilProcess, runs_of, wait_until

pytestmark = pytest.mark.e2e  # real vigil processes

PASSWORD = "s3cr3t-Pa55"
FRAME_US = 40_000  # 25 fps


def cam(cid: str, url: str, **extra: object) -> dict[str, object]:
    return {"id": cid, "name": cid, "url": url, "transport": "tcp", "tags": {"district": "test"}, **extra}


def with_creds(url: str) -> str:
    return url.replace("rtsp://", f"rtsp://operator:{PASSWORD}@")


def assert_no_credentials(v: VigilProcess) -> None:
    text = v.log_text()
    assert PASSWORD not in text, "an RTSP password reached the logs"


def assert_segments_play(store: LocalStore | S3Store, segs: list[Segment], tmp: Path) -> None:
    """Every object exists with the catalog's size, starts on a keyframe and decodes alone."""
    for s in segs:
        assert s.state == "stored"
        st = store.stat(s.object_key)
        assert st is not None and st.size == s.bytes, s.object_key
        path = tmp / "check.mp4"
        path.write_bytes(store.get_range(s.object_key))
        with av.open(str(path)) as f:
            first = next(p for p in f.demux(video=0) if p.dts is not None)
            assert first.is_keyframe, f"{s.object_key} does not start with a keyframe"
        with av.open(str(path)) as f:
            assert sum(1 for _ in f.decode(video=0)) == s.frames, s.object_key


def assert_runs_abut(segs: list[Segment]) -> None:
    for run in runs_of(segs).values():
        assert [s.seq for s in run] == list(range(run[0].seq, run[0].seq + len(run)))
        for a, b in zip(run, run[1:]):
            assert abs(b.start_us - a.end_us) <= FRAME_US, (a, b)


def test_three_cameras_into_s3_and_local_dir(
    tmp_path: Path, s3: SeaweedS3, clip_h264_30s: ClipInfo, clip_hevc_aac: ClipInfo
) -> None:
    """Checks 1, 6, 7, 8: 40 s of three cameras with 10 s segments, on both storage backends."""
    with RtspServer(
        {
            "/file": f"file:{clip_h264_30s.path}",
            "/hevc": f"file:{clip_hevc_aac.path}",
            "/live": "synthetic:?w=320&h=240&fps=25&gop=25",
        }
    ) as rtsp:
        cams = [
            cam("file-h264", with_creds(rtsp.url("/file"))),
            cam("hevc-aac", with_creds(rtsp.url("/hevc"))),
            cam("live-h264", with_creds(rtsp.url("/live"))),
        ]
        on_s3 = VigilProcess(tmp_path / "s3", cams, s3=s3, recording={"segment_seconds": 10})
        on_disk = VigilProcess(tmp_path / "local", cams, recording={"segment_seconds": 10})
        with on_s3, on_disk:
            t0 = time.monotonic()
            wait_until(lambda: time.monotonic() - t0 >= 40, 60, 1.0, "40 s of recording")
            t_term = time.time()
            for v in (on_s3, on_disk):
                assert v.terminate() < 10.0, "SIGTERM must drain within 10 s"

            for v, store in (
                (on_s3, S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, create_bucket=False)),
                (on_disk, LocalStore(tmp_path / "local" / "objects")),
            ):
                segs = v.catalog.segments_for()
                assert {s.state for s in segs} == {"stored"}
                mine = {str(c["id"]) for c in cams}  # the S3 server is shared with other tests
                assert sorted(o.key for o in store.list() if o.key.split("/")[0] in mine) == sorted(
                    s.object_key for s in segs
                )
                assert not list((Path(v.config["spool"]["path"])).rglob("*.mp4")), "spool must be empty"
                assert_segments_play(store, segs, tmp_path)
                assert_runs_abut(segs)

                # the served file: its first run holds every frame, first GOP included, and lasts
                # exactly as long as the file
                file_runs = list(runs_of(v.catalog.segments_for("file-h264")).values())
                first = file_runs[0]
                assert sum(s.frames for s in first) == clip_h264_30s.frames
                dur = sum(s.duration_us for s in first)
                assert abs(dur - clip_h264_30s.duration_s * 1e6) <= FRAME_US
                assert [round(s.duration_us / 1e6) for s in first] == [10, 10, 10]
                assert len(file_runs) >= 2, "the file ended; the camera must be reconnected as a new run"

                hevc = v.catalog.segments_for("hevc-aac")
                assert {(s.video_codec, s.audio_codec) for s in hevc} == {("hevc", "aac")}

                live = v.catalog.segments_for("live-h264")
                assert len(runs_of(live)) == 1
                assert live[-1].end_us / 1e6 >= t_term - 2.0, "the open segment was not closed at SIGTERM"
                assert (live[-1].end_us - live[0].start_us) / 1e6 >= 38
                assert_no_credentials(v)


def _first_frame_time(url: str) -> float:
    """When a new client reads its first timed video packet from `url` (wall clock)."""
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=20.0) as c:
        for pkt in c.demux(c.streams.video[0]):
            if pkt.dts is not None:
                return time.time()
    raise AssertionError(f"{url}: no video")


def test_rtsp_server_outage_starts_a_new_run_with_an_exact_gap(tmp_path: Path) -> None:
    """Check 2: the server is stopped for ~10 s; the worker reconnects by itself."""
    rtsp = RtspServer({"/live": "synthetic:?w=320&h=240&fps=25&gop=10"})
    v = VigilProcess(
        tmp_path,
        [cam("live", with_creds(rtsp.url("/live")))],
        recording={"segment_seconds": 2},
        workers={"processes": 1, "backoff_initial_s": 0.25, "backoff_max_s": 0.5},
    )
    try:
        with v:
            wait_until(lambda: len(v.catalog.segments_for("live", stored_only=True)) >= 2, 30, what="recording")
            t_stop = time.time()
            rtsp.stop()
            wait_until(lambda: time.time() - t_stop >= 10, 20, 0.5, "a 10 s outage")
            rtsp.start()
            t_ready = time.time()
            # The outage, as a viewer saw it, ends with the first frame a fresh client can read: a
            # restarted server may take a while to encode it under load, and no recorder can do better.
            t_up = _first_frame_time(rtsp.url("/live"))
            wait_until(
                lambda: len(runs_of(v.catalog.segments_for("live", stored_only=True))) >= 2
                and len(list(runs_of(v.catalog.segments_for("live", stored_only=True)).values())[-1]) >= 2,
                30,
                what="a second run after the outage",
            )
            st = v.catalog.get_status("live")
            assert st is not None and st.reconnects >= 1
            v.terminate()
            runs = list(runs_of(v.catalog.segments_for("live")).values())
            assert len(runs) == 2
            gap_s = (runs[1][0].start_us - runs[0][-1].end_us) / 1e6
            outage_s = t_up - t_stop
            assert t_ready - t_stop - 1.0 <= gap_s <= outage_s + 0.5 + 1.0, (gap_s, t_ready - t_stop, outage_s)
            assert abs(runs[0][-1].end_us / 1e6 - t_stop) <= 1.0
            assert "Traceback" not in v.log_text()
            assert_no_credentials(v)
    finally:
        rtsp.stop()


def test_s3_outage_loses_nothing(tmp_path: Path) -> None:
    """Check 3: S3 down for 15 s during recording (past the uploader's longest backoff, 10 s); every
    segment ends up in S3; the spool empties."""
    s3 = SeaweedS3(tmp_path / "s3")
    rtsp = RtspServer({"/a": "synthetic:?w=320&h=240&fps=25&gop=25", "/b": "synthetic:?w=320&h=240&fps=25&gop=50"})
    v = VigilProcess(
        tmp_path / "v",
        [cam("a", rtsp.url("/a")), cam("b", rtsp.url("/b"))],
        s3=s3,
        recording={"segment_seconds": 3},
    )
    try:
        with v:
            wait_until(lambda: len(v.catalog.segments_for(stored_only=True)) >= 2, 30, what="first uploads")
            s3.stop()
            t_down = time.monotonic()
            wait_until(lambda: time.monotonic() - t_down >= 15, 25, 0.5, "a 15 s S3 outage")
            spooled = v.catalog.pending_segments()
            assert len(spooled) >= 6, "segments closed during the outage must wait in the spool and the catalog"
            s3.start()
            wait_until(
                lambda: not v.catalog.pending_segments()
                and len(v.catalog.segments_for(stored_only=True)) >= len(spooled) + 2,
                60,
                what="the spool to drain",
            )
            v.terminate()
            segs = v.catalog.segments_for()
            store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, create_bucket=False)
            assert sorted(o.key for o in store.list() if not o.key.startswith("_")) == sorted(s.object_key for s in segs)
            assert_segments_play(store, segs, tmp_path)
            for c in ("a", "b"):
                runs = runs_of(v.catalog.segments_for(c))
                assert len(runs) == 1, "an S3 outage must not break recording"
                assert_runs_abut(v.catalog.segments_for(c))
            assert not list(Path(v.config["spool"]["path"]).rglob("*.mp4")), "spool must be empty"
    finally:
        rtsp.stop()
        s3.stop()


def test_killed_worker_is_restarted_and_its_partial_segment_recovered(tmp_path: Path) -> None:
    """Check 4: kill -9 of a worker mid-segment."""
    import os
    import signal

    rtsp = RtspServer({"/a": "synthetic:?w=320&h=240&fps=25&gop=25"})
    v = VigilProcess(
        tmp_path, [cam("a", rtsp.url("/a"))], recording={"segment_seconds": 30}, workers={"processes": 1}
    )
    spool = Path(v.config["spool"]["path"])
    try:
        with v:
            (pid,) = wait_until(v.worker_pids, 20, what="the worker process")

            def open_fragments() -> int:
                lines = [j.read_text().count('"fragment"') for j in spool.rglob("*.jsonl")]
                return max(lines, default=0)

            wait_until(lambda: open_fragments() >= 4, 30, what="an open segment with 4 fragments")
            os.kill(pid, signal.SIGKILL)
            new = wait_until(lambda: [p for p in v.worker_pids() if p != pid], 20, what="the worker's restart")
            assert new and pid not in new
            rec = wait_until(
                lambda: [s for s in v.catalog.segments_for("a", stored_only=True) if s.recovered],
                20,
                what="the recovered segment in storage",
            )
            assert len(rec) == 1 and len(rec[0].fragments) >= 4
            store = LocalStore(tmp_path / "objects")
            assert_segments_play(store, rec, tmp_path)
            wait_until(
                lambda: len(runs_of(v.catalog.segments_for("a", stored_only=False))) >= 1
                and any(j for j in spool.rglob("*.jsonl") if '"fragment"' in j.read_text()),
                30,
                what="recording to resume after the restart",
            )
            v.terminate()
            assert len(runs_of(v.catalog.segments_for("a"))) == 2
    finally:
        rtsp.stop()


class GarbageServer:
    """Accepts TCP connections and answers with bytes that are not RTSP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import os

        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.sendall(os.urandom(4096) + b"RTSP/1.0 999 ???\r\n\r\n" + os.urandom(4096))
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_broken_cameras_retry_with_capped_backoff_and_spare_the_others(tmp_path: Path) -> None:
    """Check 5 (and 8): refused, 404, hung and garbage cameras next to a healthy one."""
    good = RtspServer({"/ok": "synthetic:?w=320&h=240&fps=25&gop=25"})
    hung = RtspServer({"/h": "synthetic:?w=320&h=240&fps=25&gop=25"})
    garbage = GarbageServer()
    refused_port = free_port()
    cams = [
        cam("good", with_creds(good.url("/ok"))),
        cam("refused", with_creds(f"rtsp://127.0.0.1:{refused_port}/x")),
        cam("notfound", with_creds(good.url("/nope"))),
        cam("hung", with_creds(hung.url("/h"))),
        cam("garbage", with_creds(f"rtsp://127.0.0.1:{garbage.port}/x")),
    ]
    v = VigilProcess(
        tmp_path,
        cams,
        recording={"segment_seconds": 2},
        workers={"processes": 2, "backoff_initial_s": 0.25, "backoff_max_s": 1.0, "read_timeout_s": 2.0, "connect_timeout_s": 2.0},
        log_level="DEBUG",  # each reconnect's delay is a debug line (the console says a fault once)
    )
    try:
        with v:
            wait_until(lambda: v.catalog.segments_for("hung", stored_only=True), 30, what="the hung camera to record")
            pids = v.worker_pids()
            hung.pause()
            t0 = time.monotonic()
            wait_until(lambda: time.monotonic() - t0 >= 15, 25, 0.5, "15 s of faults")
            log = v.log_text()
            for cid in ("refused", "notfound", "hung", "garbage"):
                delays = [float(d) for d in re.findall(rf"{cid}: reconnecting in ([0-9.]+) s", log)]
                assert len(delays) >= 3, f"{cid} should keep retrying: {delays}"
                assert max(delays) <= 1.0, f"{cid} backoff must be capped: {delays}"
                st = v.catalog.get_status(cid)
                assert st is not None and st.state == "offline", (cid, st)
            assert v.worker_pids() == pids, "no worker process may die of a bad camera"
            v.terminate()
            good_segs = v.catalog.segments_for("good")
            assert len(runs_of(good_segs)) == 1, "the healthy camera must record without a gap"
            assert_runs_abut(good_segs)
            assert (good_segs[-1].end_us - good_segs[0].start_us) / 1e6 >= 15
            assert "Traceback" not in v.log_text()
            assert_no_credentials(v)
            assert garbage.connections >= 3
    finally:
        hung.resume()
        hung.stop()
        good.stop()
        garbage.close()
