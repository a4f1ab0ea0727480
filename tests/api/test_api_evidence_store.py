"""Evidence bundles in the object store: made on one node, downloaded from another that never had
the file (whole, by Range, its manifest); and with the store down at upload time the job is done,
served by its node, refused elsewhere with the reason, and uploaded once the store is back.
Real SeaweedFS S3, a real SQLite catalog shared by two apps (two nodes)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import EvidenceConfig
from evidence.exports import get_export
from harness.recorded import RunSpec, make_recording
from harness.servers import SeaweedS3
from harness.vigilproc import wait_until
from storage.catalog import Catalog
from storage.object_store import S3Store
from tests.api.conftest import T0, ApiEnv, export_incident, make_env

def _nodes(tmp: Path, store: S3Store, **kw: object) -> tuple[ApiEnv, ApiEnv]:
    a = make_env(tmp / "a", store=store, node_id="node-a", **kw)  # type: ignore[arg-type]
    b = make_env(tmp / "b", store=store, node_id="node-b", catalog=Catalog(a.catalog.url, create=False), **kw)  # type: ignore[arg-type]
    return a, b


@pytest.fixture
def two_clients(tmp_path: Path, s3_store: S3Store) -> Iterator[tuple[ApiEnv, TestClient, ApiEnv, TestClient]]:
    a, b = _nodes(tmp_path, s3_store)
    a.add_camera("st-cam")
    make_recording(s3_store, a.catalog, "st-cam", tmp_path / "media", [RunSpec(T0, 6, 2)])
    with a.client() as ca, b.client() as cb:
        yield a, ca, b, cb


def test_bundle_made_on_one_node_is_served_by_another(two_clients: tuple[ApiEnv, TestClient, ApiEnv, TestClient],
                                                      s3_store: S3Store) -> None:
    a, ca, b, cb = two_clients
    job = export_incident(ca, a, ["st-cam"])
    eid, size = str(job["id"]), int(job["bytes"])  # type: ignore[call-overload]
    left_on_a = list((a.workdir / "exports").rglob("bundle.zip"))
    shutil.rmtree(a.workdir / "exports", ignore_errors=True)  # node a's disk, out of b's reach (or a died)

    h = b.auth("investigator")
    r = cb.get(f"/api/exports/{eid}/bundle.zip", headers=h)
    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).hexdigest() == job["sha256"]
    assert (job["node_id"], job["stored"], job["local_only"]) == ("node-a", True, None)
    row = get_export(a.catalog, eid)
    assert row is not None and row.object_key == f"_exports/{eid}/bundle.zip" and row.store_error is None
    stored = s3_store.get_range(row.object_key)
    assert r.content == stored and len(stored) == size
    assert not left_on_a, "the store holds it: no second copy on node a"
    assert r.headers["content-disposition"] == f'attachment; filename="incident-{job["incident_id"]}-{eid}.zip"'
    assert (r.headers["cache-control"], r.headers["accept-ranges"]) == ("no-store", "bytes")
    assert r.headers["etag"] == f'"{job["sha256"]}"' and r.headers["content-length"] == str(size)
    r = cb.get(f"/api/exports/{eid}/bundle.zip", headers={**h, "Range": "bytes=100-1099"})
    assert r.status_code == 206 and r.content == stored[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{size}"
    r = cb.get(f"/api/exports/{eid}/bundle.zip", headers={**h, "Range": "bytes=-500"})
    assert r.status_code == 206 and r.content == stored[-500:]
    r = cb.get(f"/api/exports/{eid}/bundle.zip", headers={**h, "Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    man = cb.get(f"/api/exports/{eid}/manifest.json", headers=h)
    assert man.status_code == 200 and hashlib.sha256(man.content).hexdigest() == job["manifest_sha256"]
    url = cb.get(f"/api/exports/{eid}/bundle-url", headers=h).json()["url"]
    assert cb.get(url).content == stored  # a signed URL, no key
    downloads = [e for e in cb.get("/api/audit", headers=b.auth("admin"), params={"limit": 1000}).json()["entries"]
                 if e["action"] == "export.download" and e["detail"]["export_id"] == eid]
    assert sorted(d["detail"]["range"] for d in downloads) == ["", "", "bytes=-500", "bytes=100-1099", f"bytes={size}-"]


def test_store_down_at_upload_keeps_it_on_its_node_then_the_retry_uploads_it(tmp_path: Path) -> None:
    """The incident's camera recorded nothing in the window, so the export reads nothing from the
    store: it is down only for the bundle's upload (stopped by its PID), never for the export."""
    weed = SeaweedS3(tmp_path / "weed")
    try:
        store = S3Store(weed.endpoint, weed.access_key, weed.secret_key, weed.bucket)
        a, b = _nodes(tmp_path, store, evidence=EvidenceConfig(upload_retry_s=0.3))
        a.add_camera("st-quiet")
        with a.client() as ca, b.client() as cb:
            weed.stop()
            assert not weed.running
            job = export_incident(ca, a, ["st-quiet"])
            eid = str(job["id"])
            row = get_export(a.catalog, eid)
            assert row is not None and row.object_key is None and row.path and Path(row.path).is_file()
            assert row.store_error and row.store_error.startswith("the object store refused the bundle: s3 ")
            assert job["stored"] is False and job["local_only"] == row.store_error[: len(str(job["local_only"]))]
            assert weed.secret_key not in row.store_error and weed.access_key not in row.store_error
            local = Path(row.path).read_bytes()
            assert hashlib.sha256(local).hexdigest() == job["sha256"]

            r = ca.get(f"/api/exports/{eid}/bundle.zip", headers=a.auth("investigator"))  # its node serves it
            assert r.status_code == 200 and r.content == local
            man = ca.get(f"/api/exports/{eid}/manifest.json", headers=a.auth("investigator")).content
            assert hashlib.sha256(man).hexdigest() == job["manifest_sha256"]
            r = cb.get(f"/api/exports/{eid}/bundle.zip", headers=b.auth("investigator"))
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            said = r.json()["detail"]
            assert f"export {eid} is only on node 'node-a'" in said and "the object store refused the bundle" in said
            assert weed.secret_key not in said
            here = {n: c.get(f"/api/exports/{eid}", headers=e.auth("investigator")).json()["served_here"]
                    for n, c, e in (("a", ca, a), ("b", cb, b))}
            assert here == {"a": True, "b": False}, "the page offers the download only where it works"

            weed.start()
            stored = wait_until(lambda: (j := get_export(a.catalog, eid)) and j.object_key and j, 30, 0.05,
                                "the retry to upload the bundle")
            assert stored.store_error is None and stored.path is None and not Path(row.path).exists()
            assert store.get_range(stored.object_key) == local
            r = cb.get(f"/api/exports/{eid}/bundle.zip", headers=b.auth("investigator"))
            assert r.status_code == 200 and r.content == local
            assert cb.get(f"/api/exports/{eid}", headers=b.auth("investigator")).json()["served_here"] is True
    finally:
        weed.stop()


def test_bundles_from_before_or_cut_off_by_a_restart_reach_the_store_when_their_node_starts(
        tmp_path: Path, s3_store: S3Store) -> None:
    """Rows as migration 0013 leaves one done before it (a path on node a, no key, no error), and as
    a node stopped while uploading leaves one (running, its bundle written): elsewhere a 503 that
    names node a; when node a starts again both are done, served, and uploaded."""
    import zipfile

    import sqlalchemy as sa

    from storage.catalog import exports

    a, b = _nodes(tmp_path, s3_store)
    old, cut, early = "0123456789abcdef01234567", "0123456789abcdef01234568", "0123456789abcdef01234569"
    datas = {}
    for eid, state in ((old, "done"), (cut, "running")):
        zpath = a.workdir / "exports" / eid / "bundle.zip"
        zpath.parent.mkdir(parents=True)
        with zipfile.ZipFile(zpath, "w") as z:
            z.writestr("manifest.json", b'{"old": true}')
            z.writestr("media/x.mp4", bytes(range(256)) * 400 + eid.encode())
        data = datas[eid] = zpath.read_bytes()
        with a.catalog.engine.begin() as c:
            c.execute(sa.insert(exports).values(
                id=eid, incident_id=1, state=state, progress=1.0, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                manifest_sha256=hashlib.sha256(b'{"old": true}').hexdigest(), path=str(zpath), error="",
                node_id="node-a", created_us=T0, finished_us=T0 if state == "done" else None))
    with a.catalog.engine.begin() as c:
        c.execute(sa.insert(exports).values(id=early, incident_id=1, state="running", progress=0.5, error="",
                                            node_id="node-a", created_us=T0))
    with b.client() as cb:
        r = cb.get(f"/api/exports/{old}/bundle.zip", headers=b.auth("investigator"))
        assert r.status_code == 503
        assert "only on node 'node-a'" in r.json()["detail"] and "made before bundles were kept" in r.json()["detail"]
        again = make_env(tmp_path / "a2", store=s3_store, node_id="node-a", catalog=Catalog(a.catalog.url, create=False))
        assert (get_export(a.catalog, cut).state, get_export(a.catalog, early).state) == ("done", "failed")  # type: ignore[union-attr]
        with again.client() as ca:  # node a's start uploads both
            for eid in (old, cut):
                stored = wait_until(lambda: (j := get_export(a.catalog, eid)) and j.object_key and j, 20, 0.05, "the upload")
                assert stored.path is None and stored.store_error is None
                man = ca.get(f"/api/exports/{eid}/manifest.json", headers=again.auth("investigator")).content
                assert man == b'{"old": true}'
                r = cb.get(f"/api/exports/{eid}/bundle.zip", headers={**b.auth("investigator"), "Range": "bytes=0-9"})
                assert r.status_code == 206 and r.content == datas[eid][:10]
                assert cb.get(f"/api/exports/{eid}/bundle.zip", headers=b.auth("investigator")).content == datas[eid]
        assert not list((a.workdir / "exports").rglob("bundle.zip"))
