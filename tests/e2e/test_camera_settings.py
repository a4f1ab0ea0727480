"""`vigil run` with two cameras on one worker process: one camera's unusable settings, written
straight to the catalog, stop that camera alone — never the process nor its other camera."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.catalog import Catalog, cameras
from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, runs_of, wait_until

pytestmark = pytest.mark.e2e  # a real vigil process


def _write_options(catalog: Catalog, camera_id: str, options: dict[str, object]) -> None:
    """As a hand edit or an older version would: past the API's and the config's checks."""
    with catalog.engine.begin() as c:
        c.execute(
            sa.update(cameras)
            .where(cameras.c.id == camera_id)
            .values(options=options, updated_us=int(time.time() * 1_000_000))
        )


def test_a_bad_setting_in_the_catalog_stops_only_its_camera(tmp_path: Path) -> None:
    rtsp = RtspServer({"/a": "synthetic:?w=160&h=120&fps=25&gop=25", "/b": "synthetic:?w=160&h=120&fps=25&gop=25"})
    v = VigilProcess(
        tmp_path,
        [{"id": "a", "url": rtsp.url("/a")}, {"id": "b", "url": rtsp.url("/b")}],
        recording={"segment_seconds": 2},
        workers={"processes": 1, "backoff_initial_s": 0.25, "backoff_max_s": 1.0},
    )
    try:
        with v:
            wait_until(lambda: v.catalog.segments_for("a") and v.catalog.segments_for("b"), 40, what="both cameras to record")
            pids = v.worker_pids()
            _write_options(v.catalog, "b", {"health": {"freeze_after_s": -1}})

            def refused() -> bool:
                st = v.catalog.get_status("b")
                return st is not None and st.reason.startswith("settings refused:")

            wait_until(refused, 20, what="camera b to be refused")
            st = v.catalog.get_status("b")
            assert st is not None and st.state == "offline"
            assert st.reason == "settings refused: health.freeze_after_s: Input should be greater than 0"
            n = len(v.catalog.segments_for("a"))
            wait_until(lambda: len(v.catalog.segments_for("a")) >= n + 3, 20, what="camera a to go on recording")
            assert v.worker_pids() == pids, "the worker process must not die of one camera's settings"

            _write_options(v.catalog, "b", {"health": {"freeze_after_s": 30}})  # corrected: b records again
            m = len(v.catalog.segments_for("b"))
            wait_until(lambda: len(v.catalog.segments_for("b")) > m + 1, 30, what="camera b to record again")
            v.terminate()
            assert len(runs_of(v.catalog.segments_for("a"))) == 1, "camera a must record without a gap"
            assert "Traceback" not in v.log_text()
    finally:
        rtsp.stop()
