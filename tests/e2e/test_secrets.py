"""Secrets stay secret, end to end with `vigil run` and the real RTSP server (`--auth`):
credentials in any part of a URL never reach status reasons, events, the camera list or the log;
the catalog holds them sealed; files are 0600 and directories 0700."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from storage.api_keys import create_key
from storage.sealing import key_file_sealer
from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until

SECRET = "Zq7-s3cr3t-Pw"
USER = "operator"

pytestmark = pytest.mark.e2e  # real vigil processes / servers


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_credentials_never_leak_and_rest_sealed(tmp_path: Path) -> None:
    with RtspServer({"/live": "synthetic:?w=320&h=240&fps=25&gop=25"}, auth=f"{USER}:{SECRET}") as rtsp:
        base = f"rtsp://127.0.0.1:{rtsp.port}"
        cams = [
            # records: the credentials given in the URL are split out, sealed, and put back to log in
            {"id": "good", "url": rtsp.url("/live", user=USER, password=SECRET)},
            # fail, with errors that quote the URL: every form a recorder takes credentials in
            {"id": "path-form", "url": f"{base}/nomount/user=admin&password={SECRET}&channel=1&stream=0.sdp"},
            {"id": "semicolon", "url": f"{base}/nomount;password={SECRET}"},
            {"id": "fragment", "url": f"{base}/nomount#pass={SECRET}"},
            {"id": "wrong-user", "url": f"rtsp://intruder:{SECRET}@127.0.0.1:{rtsp.port}/live"},
        ]
        with VigilProcess(tmp_path / "v", cams, recording={"segment_seconds": 2}) as v:
            admin = create_key(v.catalog, "admin", "sec-admin")
            viewer = create_key(v.catalog, "viewer", "sec-viewer")
            wait_until(lambda: v.catalog.segments_for("good"), 60, what="the camera with credentials to record")
            failing = ("path-form", "semicolon", "fragment", "wrong-user")

            def reasons() -> dict[str, str]:
                return {i: (st.reason if (st := v.catalog.get_status(i)) else "") for i in failing}

            wait_until(lambda: all(reasons().values()), 60, what="a failure reason for every failing camera")
            with httpx.Client(base_url=v.url, timeout=10) as c:
                hv = {"Authorization": f"Bearer {viewer}"}
                ha = {"Authorization": f"Bearer {admin}"}
                # one added through the API, path form: split the same way
                r = c.post("/api/cameras", headers=ha, json={"id": "api-path", "url": f"{base}/x/user=u&pwd={SECRET}&ch=1"})
                assert r.status_code == 201, r.text
                assert r.json()["url"].endswith("/x/user=u&pwd=***&ch=1") and r.json()["password_set"]
                shown = {
                    "status": c.get("/api/status", headers=hv).text,
                    "events": c.get("/api/events", headers=hv, params={"limit": 1000}).text,
                    "cameras": c.get("/api/cameras", headers=ha).text,
                    "audit": c.get("/api/audit", headers=ha).text,
                    **{f"status/{i}": c.get(f"/api/cameras/{i}/status", headers=hv).text for i in failing},
                }
            for what, text in shown.items():
                assert SECRET not in text, f"{what} shows the password"
            assert "nomount" in shown["status/path-form"], "the reason quotes the URL (redacted)"
            assert "password=***" in shown["status/path-form"]
            assert SECRET not in v.log_text(), "the log shows the password"
            assert "nomount" in v.log_text()

            # at rest: sealed in the catalog, private files, the key outside the catalog
            catalog_db = tmp_path / "v" / "catalog.db"
            v.terminate()
            raw = b"".join(p.read_bytes() for p in catalog_db.parent.glob("catalog.db*"))
            assert SECRET.encode() not in raw, "the catalog holds the password in clear"
            key_file = tmp_path / "v" / "secret.key"
            assert key_file.exists() and _mode(key_file) == 0o600
            for p in catalog_db.parent.glob("catalog.db*"):
                assert _mode(p) == 0o600, f"{p.name} is {oct(_mode(p))}"
            spool = Path(v.config["spool"]["path"])
            assert _mode(spool) == 0o700 and _mode(tmp_path / "v") == 0o700
            for p in spool.rglob("*"):
                assert _mode(p) == (0o700 if p.is_dir() else 0o600), f"{p} is {oct(_mode(p))}"


def test_a_substream_url_cannot_change_the_login(tmp_path: Path) -> None:
    """A health_url given with another password than the camera's is refused, and the camera
    records on; before, it silently became the main stream's login too (recording stopped at the
    next reconnect) and the audit entry recorded no change."""
    with RtspServer({"/live": "synthetic:?w=160&h=120&fps=25&gop=25"}, auth=f"{USER}:{SECRET}") as rtsp:
        cams = [{"id": "cam", "url": rtsp.url("/live", user=USER, password=SECRET)}]
        with VigilProcess(tmp_path / "v", cams, recording={"segment_seconds": 2}) as v:
            admin = create_key(v.catalog, "admin", "sub-admin")
            wait_until(lambda: v.catalog.segments_for("cam"), 60, what="the camera to record")
            wrong = rtsp.url("/live", user=USER, password="typo-" + SECRET)
            with httpx.Client(base_url=v.url, timeout=10, headers={"Authorization": f"Bearer {admin}"}) as c:
                r = c.patch("/api/cameras/cam", json={"health_url": wrong})
                assert r.status_code == 422, r.text
                # a change that restarts the camera's recorder: it must still log in
                assert c.patch("/api/cameras/cam", json={"transport": "tcp", "name": "Gate"}).status_code == 200
            n = len(v.catalog.segments_for("cam"))
            wait_until(lambda: len(v.catalog.segments_for("cam")) >= n + 3, 30, what="the camera to record on")
            cam = v.catalog.get_camera("cam")
            assert cam is not None and cam.password_sealed is not None
            assert key_file_sealer(tmp_path / "v" / "secret.key").unseal(cam.password_sealed) == SECRET
