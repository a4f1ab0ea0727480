"""The API of a real `vigil run` recording a real RTSP camera (GStreamer server):

- the live playlist advances while the camera records, and its newest media is at
  most two GOPs plus a second behind the camera; FFmpeg plays it through signed URLs;
- a camera added with POST /api/cameras is recording within 5 s; one deleted stops;
- for this process too: no response carries the camera password.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import av
import httpx

from storage.api_keys import create_key
from storage.spool import Spool
from tests.api.conftest import CAMERA_PASSWORD, CAMERA_USER
from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until

pytestmark = pytest.mark.e2e  # real vigil processes

GOP_S = 1.0  # the synthetic camera: 25 fps, a keyframe every 25 frames


def newest_end(playlist: str) -> float:
    """Wall-clock end (epoch s) of the newest entry of a live playlist."""
    t = end = 0.0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            t = datetime.fromisoformat(line.split(":", 1)[1]).timestamp()
        elif line.startswith("#EXTINF:"):
            t += float(line[8:].rstrip(","))
            end = t
    return end


def test_live_and_camera_changes_with_vigil_run(tmp_path: Path) -> None:
    bodies: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        if "text" in r.headers.get("content-type", "") or "json" in r.headers.get("content-type", ""):
            bodies.append(r.text)
        bodies.append(str(r.headers))
        return r

    with RtspServer(
        {"/a": "synthetic:?w=320&h=240&fps=25&gop=25", "/b": "synthetic:?w=320&h=240&fps=25&gop=25"}
    ) as rtsp:

        def url(path: str) -> str:
            return rtsp.url(path, user=CAMERA_USER, password=CAMERA_PASSWORD)

        cams = [{"id": "cam-a", "url": url("/a")}]
        with VigilProcess(tmp_path / "v", cams, recording={"segment_seconds": 4}) as v:
            admin = create_key(v.catalog, "admin", "e2e-admin")
            viewer = create_key(v.catalog, "viewer", "e2e-viewer")
            h = {"Authorization": f"Bearer {viewer}"}
            ha = {"Authorization": f"Bearer {admin}"}
            with httpx.Client(base_url=v.url, timeout=10) as c:
                # live: the playlist appears, advances, and stays close behind the camera
                wait_until(lambda: c.get("/api/cameras/cam-a/live.m3u8", headers=h).status_code == 200, 20, 0.2,
                           "a live playlist for cam-a")  # fmt: skip
                lags, ends, seqs = [], [], []
                t0 = time.monotonic()
                while time.monotonic() - t0 < 6:  # spans a segment boundary (4 s segments)
                    r = keep(c.get("/api/cameras/cam-a/live.m3u8", headers=h))
                    assert r.status_code == 200
                    lags.append(time.time() - newest_end(r.text))
                    ends.append(newest_end(r.text))
                    seqs.append(int(re.search(r"MEDIA-SEQUENCE:(\d+)", r.text).group(1)))  # type: ignore[union-attr]
                    time.sleep(0.25)
                assert ends[-1] >= ends[0] + 4, "the live playlist advances"
                assert seqs == sorted(seqs)
                assert max(lags) <= 2 * GOP_S + 1.0, f"newest media lags the camera by up to {max(lags):.2f} s"
                print(f"live lag behind the camera: median {sorted(lags)[len(lags) // 2]:.2f} s, max {max(lags):.2f} s")

                signed = keep(c.get("/api/cameras/cam-a/live-url", headers=h)).json()["url"]
                decoded = 0
                with av.open(v.url + signed, timeout=20) as container:
                    stream = container.streams.video[0]
                    for packet in container.demux(stream):
                        decoded += len(stream.codec_context.decode(packet))
                        if decoded >= 50:
                            break
                assert decoded >= 50

                # a camera added through the API records within 5 s
                t_add = time.monotonic()
                r = keep(c.post("/api/cameras", json={"id": "cam-b", "url": url("/b")}, headers=ha))
                assert r.status_code == 201 and CAMERA_PASSWORD not in r.text
                wait_until(lambda: c.get("/api/cameras/cam-b/live.m3u8", headers=h).status_code == 200, 5, 0.1,
                           "cam-b recording (a live fragment) within 5 s of POST")  # fmt: skip
                print(f"cam-b first fragment {time.monotonic() - t_add:.2f} s after POST")

                # and one deleted stops: its open segment is closed and nothing new is written
                spool = Spool(Path(v.config["spool"]["path"]))
                assert c.delete("/api/cameras/cam-b", headers=ha).status_code == 204
                wait_until(lambda: not spool.open_segments("cam-b"), 5, 0.1, "cam-b's recording to stop")
                wait_until(lambda: not list(spool.camera_dir("cam-b").glob("*.jsonl")), 10, 0.1,
                           "cam-b's last segment uploaded")  # fmt: skip
                stopped = [s.object_key for s in v.catalog.segments_for("cam-b")]
                assert stopped, "what cam-b recorded was kept"
                time.sleep(1.5)
                assert not list(spool.camera_dir("cam-b").glob("*.jsonl"))
                assert [s.object_key for s in v.catalog.segments_for("cam-b")] == stopped

                for path in ("/api/cameras", "/api/status", "/api/cameras/cam-a/status", "/api/audit"):
                    keep(c.get(path, headers=ha))
    assert bodies and not [b for b in bodies if CAMERA_PASSWORD in b]
