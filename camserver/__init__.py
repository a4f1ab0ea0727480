"""The demo's and the tests' RTSP cameras: GStreamer's RTSP server (`server.py`), run as a script
with the system Python (which has `gi`). A tool vigil's demo and tests take, not part of the product:
it imports nothing of vigil."""

from pathlib import Path

__all__ = ["SERVER"]

SERVER = Path(__file__).resolve().parent / "server.py"
