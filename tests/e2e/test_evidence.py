"""Evidence end to end: a real `vigil run` recording real RTSP cameras into real SeaweedFS; an
incident chosen by distance from a point (locations from the YAML), exported, downloaded through
a signed URL and verified by the stock `openssl`/`sha256sum` commands, `vigil verify` and
`vigil audit verify`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from harness.servers import RtspServer, SeaweedS3
from harness.vigilproc import VigilProcess, wait_until
from storage.api_keys import create_key
from vigil.cli import main as vigil

pytestmark = pytest.mark.e2e  # real vigil processes, RTSP cameras and S3

SYN = "synthetic:?w=320&h=240&fps=25&gop=25"


def _signed_bundle(r: httpx.Response, tmp_path: Path, sha256: str) -> tuple[Path, Path]:
    """The downloaded zip (its digest the export's) and its unzipped folder, whose signature the
    stock `openssl` accepts."""
    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).hexdigest() == sha256
    zpath, folder = tmp_path / "bundle.zip", tmp_path / "bundle"
    zpath.write_bytes(r.content)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(folder)
    sig = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin",
                          "-in", "manifest.json", "-sigfile", "manifest.sig"], cwd=folder, capture_output=True, text=True)
    assert sig.returncode == 0 and "Signature Verified Successfully" in sig.stdout, sig
    return zpath, folder


def test_incident_near_a_point_exported_signed_and_verified(tmp_path: Path, s3: SeaweedS3) -> None:
    with RtspServer({"/a": SYN, "/b": SYN, "/c": SYN}) as rtsp:
        cams = [
            {"id": "e2e-ev-a", "name": "Gate A", "url": rtsp.url("/a"), "tags": {"district": "north"},
             "location": {"lat": -6.99, "lon": 110.42, "heading_deg": 10, "address": "Jl. A 1"}},
            {"id": "e2e-ev-b", "name": "Gate B", "url": rtsp.url("/b"), "tags": {"district": "north"},
             "location": {"lat": -6.9905, "lon": 110.4205}},  # ≈ 78 m from A
            {"id": "e2e-ev-c", "name": "Harbour", "url": rtsp.url("/c"), "tags": {"district": "north"},
             "location": {"lat": -6.95, "lon": 110.42}},  # ≈ 4.4 km away
        ]
        with VigilProcess(tmp_path / "v", cams, s3=s3, recording={"segment_seconds": 2},
                          workers={"processes": 1}) as v:
            key = create_key(v.catalog, "investigator", "e2e-investigator")
            both = ("e2e-ev-a", "e2e-ev-b")
            wait_until(lambda: all(v.catalog.segments_for(c, stored_only=True) for c in both), 40, 0.25,
                       "both cameras recording")
            first = max(v.catalog.segments_for(c, stored_only=True)[0].start_us for c in both)
            start_us, end_us = first + 1_000_000, first + 4_000_000

            def stored_past_end() -> bool:
                return all(any(s.end_us >= end_us + 1_000_000 for s in v.catalog.segments_for(c, stored_only=True))
                           for c in ("e2e-ev-a", "e2e-ev-b"))

            wait_until(stored_past_end, 40, 0.25, "the window recorded and stored")
            with httpx.Client(base_url=v.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                r = c.post("/api/incidents", json={"name": "e2e", "start": start_us / 1e6, "end": end_us / 1e6,
                                                   "near": {"lat": -6.99, "lon": 110.42, "radius_m": 200}})
                assert r.status_code == 201, r.text
                inc = r.json()
                assert [x["camera_id"] for x in inc["cameras"]] == ["e2e-ev-a", "e2e-ev-b"]
                assert inc["cameras"][0]["location"]["address"] == "Jl. A 1"
                assert all(x["recorded_s"] == 3.0 and x["gaps"] == [] for x in inc["cameras"]), inc["cameras"]
                eid = c.post(f"/api/incidents/{inc['id']}/exports").json()["id"]
                job = wait_until(lambda: (j := c.get(f"/api/exports/{eid}").json())["state"] in ("done", "failed") and j,
                                 60, 0.2, "the export")
                assert job["state"] == "done", job
                url = c.get(f"/api/exports/{eid}/bundle-url").json()["url"]
            zpath, folder = _signed_bundle(httpx.get(v.url + url, timeout=30), tmp_path, str(job["sha256"]))
            assert subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder).returncode == 0
            assert vigil(["verify", str(zpath), "--config", str(v.config_path)]) == 0
            assert vigil(["audit", "verify", "--config", str(v.config_path)]) == 0

            m = json.loads((folder / "manifest.json").read_text())
            videos = [f for f in m["files"] if f["kind"] == "video"]
            assert [f["camera_id"] for f in videos] == ["e2e-ev-a", "e2e-ev-b"]
            for f in videos:
                # whole GOPs (1 s): from the keyframe at or before the start, through the end
                assert f["first_frame_us"] <= start_us < f["first_frame_us"] + 1_000_000, f
                assert f["last_frame_us"] >= end_us - 40_000 - 1_000, f
                assert 3 * 25 <= f["frames"] <= 5 * 25 + 1, f
                assert f["clock_drift"]["last_us"] is not None and f["location"] is not None
                vtt = (folder / f["frame_times"]).read_text()
                assert vtt.count(" --> ") == f["frames"]


def test_bundle_made_on_one_node_downloads_from_another_after_it_died(tmp_path: Path, pg_url: str,
                                                                       s3: SeaweedS3) -> None:
    """Two `vigil run` nodes on one PostgreSQL catalog and one SeaweedFS: the bundle node A made is
    in the object store, so after A is killed (-9) its signed URL works through node B, and the
    file verifies (openssl, `vigil verify` with B's config: A's key is published in the catalog, and
    B serves it)."""
    with RtspServer({"/x": SYN}) as rtsp:
        cams = [{"id": "e2e-ev-x", "name": "Gate X", "url": rtsp.url("/x")}]

        def node(name: str) -> VigilProcess:
            return VigilProcess(tmp_path / name, cams, s3=s3, catalog=pg_url, node_id=name,
                                recording={"segment_seconds": 2}, workers={"processes": 1})

        a, b = node("node-a"), node("node-b")
        with a, b:
            key = create_key(a.catalog, "investigator", "e2e-investigator")
            segs = wait_until(lambda: a.catalog.segments_for("e2e-ev-x", stored_only=True), 40, 0.25, "recording")
            start_us = segs[0].start_us + 1_000_000
            end_us = start_us + 2_000_000
            wait_until(lambda: any(s.end_us >= end_us for s in a.catalog.segments_for("e2e-ev-x", stored_only=True)),
                       40, 0.25, "the window stored")
            with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                inc = c.post("/api/incidents", json={"name": "two nodes", "start": start_us / 1e6, "end": end_us / 1e6,
                                                     "cameras": ["e2e-ev-x"]}).json()
                eid = c.post(f"/api/incidents/{inc['id']}/exports").json()["id"]
                job = wait_until(lambda: (j := c.get(f"/api/exports/{eid}").json())["state"] in ("done", "failed") and j,
                                 60, 0.2, "the export")
                assert job["state"] == "done", job
                url = c.get(f"/api/exports/{eid}/bundle-url").json()["url"]
            a.kill()
            left_on_a = list((tmp_path / "node-a").rglob("bundle.zip"))
            shutil.rmtree(tmp_path / "node-a" / "exports", ignore_errors=True)  # A's disk went with A
            shutil.rmtree(tmp_path / "node-a" / "signing", ignore_errors=True)  # its keys too
            # A's signed URL, answered by B
            zpath, folder = _signed_bundle(httpx.get(b.url + url, timeout=30), tmp_path, str(job["sha256"]))
            assert (job["node_id"], job["stored"], left_on_a) == ("node-a", True, []), "in the store only"
            assert json.loads((folder / "manifest.json").read_text())["export"]["node_id"] == "node-a"
            assert vigil(["verify", str(zpath), "--config", str(b.config_path)]) == 0
            signed_by = json.loads((folder / "manifest.json").read_text())["signing_key"]["fingerprint_sha256"]
            with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                served = {k["fingerprint_sha256"]: k for k in c.get("/api/signing-keys").json()["keys"]}
            assert (served[signed_by]["node_id"], served[signed_by]["current"]) == ("node-a", True)
