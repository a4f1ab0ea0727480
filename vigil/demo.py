"""`vigil demo`: the sample clips as live RTSP cameras, recorded into ./data, API and page on :8080.

The cameras are real RTSP (GStreamer's server, `camserver/server.py`, run with the system Python):
three clips loop forever as live cameras, one of them freezing on a schedule so the wall shows
fault detection; the H.265 + AAC clip is served as a file, recorded by stream copy.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import camserver
from core.settings import Settings, load_settings

__all__ = ["run_demo", "demo_settings", "start_camserver"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_streams"
CAMSERVER = camserver.SERVER
SYSTEM_PYTHON = "/usr/bin/python3"  # has GStreamer's `gi`; .ci/setup installs it

MOUNTS = {
    "/street": "loop:{s}/street-h264.mp4",
    "/quiet-night": "loop:{s}/quiet-night-h264.mp4",
    "/plaza": "file:{s}/plaza-h265-aac.mp4",
    "/gate": "loop:{s}/gate-h264.mp4?gop=15",
}
SCHEDULES = ["/gate=freeze:45:25"]  # frozen 25 s of every 45 s: longer than freeze_after_s


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def start_camserver(port: int, log_path: Path | None = None) -> subprocess.Popen[str]:
    """The demo's cameras; their own log (sessions, schedule) goes to `log_path`, not the console."""
    cmd = [SYSTEM_PYTHON, str(CAMSERVER), "--port", str(port), "--auth", "demo:demo"]
    for path, spec in MOUNTS.items():
        cmd += ["--mount", f"{path}={spec.format(s=SAMPLES)}"]
    for s in SCHEDULES:
        cmd += ["--schedule", s]
    err = open(log_path, "a") if log_path is not None else None
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    finally:
        if err is not None:
            err.close()  # the child holds its own descriptor
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY"):
            return proc
    proc.wait()
    where = f"; its log: {log_path}" if log_path is not None else ""
    raise RuntimeError(
        f"the demo camera server exited with {proc.returncode} (is GStreamer installed? run .ci/setup){where}"
    )


def demo_settings(data_dir: Path, api_port: int, rtsp_port: int) -> Settings:
    """sample_streams/cameras.yaml, pointed at ./data and at the camera server's port."""
    s = load_settings(SAMPLES / "cameras.yaml")
    s.data_dir = data_dir
    s.storage.backend = "local"
    s.storage.path = data_dir / "objects"
    s.catalog = f"sqlite:///{data_dir / 'catalog.db'}"
    s.spool.path = data_dir / "spool"
    s.api.port = api_port
    for cam in s.cameras:
        u = urlsplit(cam.url)
        netloc = f"{u.username}:{u.password}@127.0.0.1:{rtsp_port}" if u.username else f"127.0.0.1:{rtsp_port}"
        cam.url = urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    return s


def run_demo(data_dir: str = "./data", port: int = 8080) -> int:
    from storage.api_keys import create_key
    from storage.catalog import Catalog
    from core.logs import setup_logging
    from vigil.service import Service

    setup_logging(os.environ.get("VIGIL_LOG_LEVEL", "INFO"))
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    rtsp_port = _free_port(8554)
    cams = start_camserver(rtsp_port, data / "camserver.log")
    try:
        settings = demo_settings(data, port, rtsp_port)
        key = create_key(Catalog(settings.catalog), "admin", "demo")
        service = Service(settings)
        print(
            f"\nvigil demo: {len(settings.cameras)} cameras on rtsp://127.0.0.1:{rtsp_port}, recording into {data}\n"
            f"  open  http://{settings.api.host}:{port}/\n"
            f"  admin key (shown once): {key}\n"
            f"  the cameras' own log: {data / 'camserver.log'}\n"
            f"  Ctrl-C stops and keeps everything recorded.\n",
            flush=True,
        )
        service.serve()
    finally:
        cams.terminate()
        try:
            cams.wait(10)
        except subprocess.TimeoutExpired:
            cams.kill()
    return 0
