"""The worker process: a real one (spawned as the supervisor spawns it) recording a real RTSP camera,
driven through its pipe — leases renewed under load never end a healthy run; and its state alone —
one camera's unusable settings refuse that camera, never the others."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.worker_process import Lease, SetCameras, SetLeases, Stop, WorkerProcess, worker_process_main
from storage.catalog import Camera, Catalog
from storage.spool import Spool
from core.camera_config import CameraOptions
from core.health_config import HealthOverrides
from core.settings import Settings
from harness.servers import RtspServer
from harness.vigilproc import wait_until

FILLER = 100_000  # other cameras' leases in each heartbeat: a big map takes a while to rebuild


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        storage={"backend": "local", "path": str(tmp_path / "objects")},
        spool={"path": str(tmp_path / "spool")},
        recording={"segment_seconds": 2},
        health={"enabled": False},
        workers={"backoff_initial_s": 0.2, "backoff_max_s": 0.2},
    )


@pytest.mark.e2e  # a real worker process and camera
def test_a_lease_renewal_never_ends_a_healthy_run(tmp_path: Path) -> None:
    """Heartbeats replace the lease map while packets check it: the camera must never see it empty."""
    settings = _settings(tmp_path)
    Catalog(settings.catalog)  # creates the tables
    rtsp = RtspServer({"/cam": "synthetic:?w=160&h=120&fps=25&gop=10"})
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=worker_process_main, args=(0, settings.model_dump_json(), child), daemon=True)
    try:
        proc.start()
        child.close()
        deadline = time.monotonic() + 3600
        held = {f"other-{i:06d}": Lease(1, deadline) for i in range(FILLER)}
        held["cam"] = Lease(7, deadline)
        heartbeat = pickle.dumps(SetLeases(held))
        parent.send_bytes(heartbeat)
        parent.send(SetCameras([Camera("cam", rtsp.url("/cam"))]))
        spool = Spool(settings.spool.path)
        wait_until(lambda: spool.open_segments("cam"), 30, what="the camera to record")
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end:  # renew as a busy supervisor would, back to back
            parent.send_bytes(heartbeat)
        parent.send(Stop())
        proc.join(20)
        assert proc.exitcode == 0
        runs = {s.segment.run_id for s in spool.closed_segments()}
        assert len(runs) == 1, f"the run was cut {len(runs) - 1} time(s) while its lease stayed valid"
        assert {s.segment.lease_epoch for s in spool.closed_segments()} == {7}
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        rtsp.stop()


def test_a_camera_whose_settings_cannot_be_used_is_refused_alone(tmp_path: Path) -> None:
    """Both ways a bad value reaches a worker: refused when the row was read, or when merged."""
    settings = _settings(tmp_path)
    catalog = Catalog(settings.catalog)
    proc = WorkerProcess(0, settings, catalog=catalog, store=None, spool=Spool(settings.spool.path))
    slipped = CameraOptions.model_construct(health=HealthOverrides.model_construct(black_fraction=3.0), retention_days=None)
    cams = [
        Camera("good", "rtsp://127.0.0.1:1/x"),
        Camera("read-bad", "rtsp://127.0.0.1:1/y", options_error="health.freeze_after_s: Input should be greater than 0"),
        Camera("merge-bad", "rtsp://127.0.0.1:1/z", options=slipped),
    ]
    try:
        proc.apply(cams)
        assert {cid: r.worker is not None for cid, r in proc.cameras.items()} == {
            "good": True, "read-bad": False, "merge-bad": False,
        }
        proc.status_writer.flush()
        bad = catalog.get_status("read-bad"), catalog.get_status("merge-bad")
        assert [(s.state, s.reason) for s in bad if s is not None] == [
            ("offline", "settings refused: health.freeze_after_s: Input should be greater than 0"),
            ("offline", "settings refused: black_fraction: Input should be less than or equal to 1"),
        ]
        fixed = Camera("read-bad", "rtsp://127.0.0.1:1/y")
        proc.apply([cams[0], fixed, cams[2]])  # corrected: recorded, the others untouched
        assert proc.cameras["read-bad"].worker is not None and proc.cameras["good"].camera is cams[0]
    finally:
        proc.stop_all(drain_s=2)


def test_the_supervisors_process_does_not_load_the_health_sampler() -> None:
    """numpy and OpenCV (~40 MB, 1 s) belong in the worker processes, not beside the API."""
    code = "import sys, vigil.service, api.app; print(sorted({'cv2', 'numpy', 'ingest.health.monitor'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
