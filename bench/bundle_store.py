"""Evidence bundles in the object store: how long a node takes to put a bundle of N MB into
SeaweedFS (put + size check, `ExportRunner.retry_uploads`, the same `_upload` a finished export
runs), and how fast another node serves it (`GET /api/exports/{id}/bundle.zip` under uvicorn,
read by httpx in 1 MB chunks) against the making node serving its local file (what every download
was before); plus `manifest.json`, read from the stored zip by ranges. Two apps on one SQLite
catalog and one SeaweedFS on this machine; the bundle is a stored zip of random bytes (its content
does not matter to either path).

    .venv/bin/python bench/bundle_store.py              # 200 MB, 3 rounds
    .venv/bin/python bench/bundle_store.py --mb 50 --rounds 1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from api.evidence_services import evidence_of  # noqa: E402
from bench.common import loadavg, md_table, median, save_result  # noqa: E402
from harness.api_env import T0, make_env, serve  # noqa: E402
from harness.servers import SeaweedS3  # noqa: E402
from storage.catalog import Catalog, exports  # noqa: E402
from storage.object_store import S3Store  # noqa: E402


def _bundle(path: Path, mb: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        z.writestr("manifest.json", b'{"bench": true}')
        with z.open("media/x.mp4", "w", force_zip64=True) as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
    return path.read_bytes()


def _download(base: str, eid: str, key: str) -> tuple[float, str]:
    h, t = hashlib.sha256(), time.perf_counter()
    with httpx.stream("GET", f"{base}/api/exports/{eid}/bundle.zip", headers={"Authorization": f"Bearer {key}"},
                      timeout=120) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes(1 << 20):
            h.update(chunk)
    return time.perf_counter() - t, h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bundle-store-") as tmp_s:
        tmp = Path(tmp_s)
        weed = SeaweedS3(tmp / "weed")
        try:
            store = S3Store(weed.endpoint, weed.access_key, weed.secret_key, weed.bucket)
            a = make_env(tmp / "a", store=store, node_id="node-a")
            b = make_env(tmp / "b", store=store, node_id="node-b", catalog=Catalog(a.catalog.url, create=False))
            runner = evidence_of(a.app.state.services).runner
            rows = []
            with serve(a.app) as url_a, serve(b.app) as url_b:
                for i in range(args.rounds):
                    eid = f"{i:024x}"
                    zpath = a.workdir / "exports" / eid / "bundle.zip"
                    data = _bundle(zpath, args.mb)
                    digest = hashlib.sha256(data).hexdigest()
                    with a.catalog.engine.begin() as c:
                        c.execute(sa.insert(exports).values(
                            id=eid, incident_id=1, state="done", progress=1.0, bytes=len(data), sha256=digest,
                            path=str(zpath), error="", node_id="node-a", created_us=T0, finished_us=T0))
                    del data
                    local_s, got = _download(url_a, eid, a.keys["investigator"])  # on its node, from disk
                    assert got == digest
                    t = time.perf_counter()
                    assert runner.retry_uploads() == 1
                    up_s = time.perf_counter() - t
                    store_s, got = _download(url_b, eid, b.keys["investigator"])  # another node, from the store
                    assert got == digest
                    t = time.perf_counter()
                    man = httpx.get(f"{url_b}/api/exports/{eid}/manifest.json",
                                    headers={"Authorization": f"Bearer {b.keys['investigator']}"}).content
                    man_ms = (time.perf_counter() - t) * 1000
                    assert man == b'{"bench": true}'
                    mb = zpath.stat().st_size / 1e6 if zpath.exists() else args.mb * 1.048576
                    rows.append({"mb": round(mb, 1), "upload_s": round(up_s, 3), "local_MBps": round(mb / local_s, 1),
                                 "store_MBps": round(mb / store_s, 1), "manifest_ms": round(man_ms, 1),
                                 "load": loadavg()})
                    print(rows[-1], flush=True)
        finally:
            weed.stop()
    summary = {k: median([r[k] for r in rows]) for k in ("upload_s", "local_MBps", "store_MBps", "manifest_ms")}
    print(md_table(list(rows[0]), [list(r.values()) for r in rows]))
    print("median", summary)
    save_result("bundle_store", {"args": vars(args), "rounds": rows, "median": summary})


if __name__ == "__main__":
    main()
