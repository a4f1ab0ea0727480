"""The API runs in a process of its own: killing it never stops recording, it comes back, and it
never outlives the recording process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until

pytestmark = pytest.mark.e2e  # real vigil processes / servers


def test_killing_the_api_process_never_stops_recording(tmp_path: Path) -> None:
    with RtspServer({"/live": "synthetic:?w=320&h=240&fps=25&gop=25"}) as rtsp:
        cams = [{"id": "cam-a", "url": rtsp.url("/live")}]
        with VigilProcess(tmp_path / "v", cams, recording={"segment_seconds": 2}) as v:
            assert v.proc is not None
            api = wait_until(v.api_pid, 10, what="the API process")
            assert api != v.proc.pid, "the API must not run in the recording process"
            wait_until(lambda: len(v.catalog.segments_for("cam-a")) >= 1, 60, what="a first segment")
            before = len(v.catalog.segments_for("cam-a"))
            t_kill = time.monotonic()
            os.kill(api, signal.SIGKILL)
            # recording goes on while there is no API
            wait_until(lambda: len(v.catalog.segments_for("cam-a")) >= before + 2, 40,
                       what="segments to keep landing with the API dead")  # fmt: skip
            new = wait_until(lambda: (p := v.api_pid()) not in (None, api) and p, 40, what="a new API process")
            wait_until(v._healthy, 40, what="the API to answer again")
            print(f"API killed: answering again after {time.monotonic() - t_kill:.1f} s, "
                  f"{len(v.catalog.segments_for('cam-a')) - before} segments recorded meanwhile")  # fmt: skip
            assert v.proc.poll() is None, "the recording process must survive"
            assert httpx.get(f"{v.url}/health", timeout=5).status_code == 200
            assert "API process" in v.log_text() and "restarting" in v.log_text()
            # and a recording process killed outright leaves no API process behind on the port
            v.kill()
            wait_until(lambda: _gone(new), 15, what="the orphaned API process to exit")


def _gone(pid: int) -> bool:
    """Exited (reaped, or a zombie waiting for whoever adopted it)."""
    try:
        return b"State:\tZ" in Path(f"/proc/{pid}/status").read_bytes()
    except FileNotFoundError:
        return True
