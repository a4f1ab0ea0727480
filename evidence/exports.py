"""Export jobs: an incident's bundle made in the background, its state in the catalog.

Why this shape: a bundle of many cameras takes seconds to minutes, longer than a request may
wait, so `POST …/exports` answers 202 with an id and a thread in the API process does the work;
`GET /api/exports/{id}` reads the row (state, progress 0–1, bytes) from any node. The thread runs
at nice 10 (Linux sets niceness per thread), so the export yields the CPU to the recorders, which
live in other processes anyway; at most `evidence.exports_at_once` run at a time, the rest queue.
When a bundle is written it goes to the object store (`_exports/{id}/bundle.zip`), is checked
there by size, and the local file is removed: every node serves it, and the making node's disk is
not where evidence lives. If the store refuses it the job is still `done`, the file stays on its
node (served there), `store_error` says why, and the node retries at start and every
`evidence.upload_retry_s` (docs/design/evidence.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.clock import SYSTEM_CLOCK, Clock
from evidence.bundle import ExportedBy, write_bundle
from evidence.incidents import coverage, get_incident
from evidence.signing_keys import SigningKeys
from storage.api_keys import KeyInfo
from storage.audit_log import add_audit, chain_head
from storage.catalog import Catalog, exports
from storage.object_store import ObjectStore, ObjectStoreError

__all__ = ["ExportJob", "ExportRunner", "ExportStopped", "bundle_key", "create_export", "get_export", "list_exports"]

log = logging.getLogger("vigil.evidence")
PROGRESS_EVERY_S = 0.5  # catalog writes of progress, at most this often


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    incident_id: int
    state: str  # queued | running | done | failed
    progress: float
    bytes: int | None
    sha256: str | None
    manifest_sha256: str | None
    path: str | None
    error: str
    node_id: str | None
    created_by: str | None
    key_id: str | None
    created_us: int
    finished_us: int | None
    object_key: str | None = None  # in the object store: any node serves it
    store_error: str | None = None  # why it is on node_id's disk only (that node retries)


def bundle_key(export_id: str) -> str:
    """Under `_exports/`: a camera id cannot start with `_`, so no camera's dated tree (what
    retention deletes) ever holds it."""
    return f"_exports/{export_id}/bundle.zip"


def _job(r: Any) -> ExportJob:
    return ExportJob(**dict(r._mapping))


def create_export(catalog: Catalog, incident_id: int, *, created_by: str | None, key_id: str | None,
                  node_id: str, now_us: int) -> ExportJob:
    eid = secrets.token_hex(12)
    with catalog.engine.begin() as c:
        c.execute(sa.insert(exports).values(
            id=eid, incident_id=incident_id, state="queued", progress=0.0, node_id=node_id, created_by=created_by,
            key_id=key_id, created_us=now_us, error=""))
    got = get_export(catalog, eid)
    assert got is not None
    return got


def get_export(catalog: Catalog, export_id: str) -> ExportJob | None:
    with catalog.engine.connect() as c:
        r = c.execute(sa.select(exports).where(exports.c.id == export_id)).first()
    return _job(r) if r is not None else None


def list_exports(catalog: Catalog, incident_id: int) -> list[ExportJob]:
    with catalog.engine.connect() as c:
        q = sa.select(exports).where(exports.c.incident_id == incident_id).order_by(exports.c.created_us)
        return [_job(r) for r in c.execute(q)]


def _update(catalog: Catalog, export_id: str, **values: Any) -> None:
    with catalog.engine.begin() as c:
        c.execute(sa.update(exports).where(exports.c.id == export_id).values(**values))


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):  # not Linux, or not allowed: run at normal priority
        pass


class ExportStopped(Exception):
    """The service is stopping: the export gives up at its next read from the store."""


class ExportRunner:
    """A small pool of background export threads for one API process.

    `stop()` must not wait for a long export (shutdown drains the recorders within 10 s, and the
    interpreter joins pool threads at exit), so a running job checks a stop flag at every chunk it
    reads from the store, gives up, and is marked failed ("interrupted")."""

    def __init__(self, catalog: Catalog, store: ObjectStore, keys: SigningKeys, out_dir: Path, *,
                 workers: int = 1, node_id: str = "", version: str = "", clock: Clock = SYSTEM_CLOCK) -> None:
        self.catalog, self.store, self.keys, self.out_dir = catalog, store, keys, Path(out_dir)
        self.node_id, self.version, self.clock = node_id, version, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export", initializer=_lower_priority)
        self._stopping = threading.Event()
        self._queued: set[str] = set()  # submitted here, not started yet
        self._lock = threading.Lock()
        # jobs a previous process of this node left unfinished will never finish; one stopped while
        # uploading a bundle it had written (sha256 set, file there) is done: the retries upload it
        mine = sa.and_(exports.c.node_id == node_id, exports.c.state.in_(("queued", "running")))
        with catalog.engine.begin() as c:
            written = [r.id for r in c.execute(sa.select(exports.c.id, exports.c.path).where(
                mine, exports.c.sha256.is_not(None), exports.c.path.is_not(None))) if Path(r.path).is_file()]
            c.execute(sa.update(exports).where(exports.c.id.in_(written)).values(
                state="done", progress=1.0, finished_us=self._now(),
                store_error="the service stopped while the bundle was being put into the object store"))
            c.execute(sa.update(exports).where(mine)
                      .values(state="failed", error="interrupted: the service restarted", finished_us=self._now()))

    def start_retries(self, every_s: float) -> threading.Thread:
        """Now and every `every_s`: upload this node's done bundles that are not in the store yet
        (the store refused them, or they were made before bundles went there)."""
        def loop() -> None:
            while not self._stopping.is_set():
                try:
                    self.retry_uploads()
                except sa.exc.SQLAlchemyError as e:  # the catalog is away: the next round tries again
                    log.warning("bundle upload retry: %s", e)
                if self._stopping.wait(every_s):
                    return

        t = threading.Thread(target=loop, name="export-upload-retry", daemon=True)
        t.start()
        return t

    def retry_uploads(self) -> int:
        """One round of `start_retries`; returns how many bundles went to the store."""
        with self.catalog.engine.connect() as c:
            q = sa.select(exports).where(exports.c.node_id == self.node_id, exports.c.state == "done",
                                         exports.c.object_key.is_(None), exports.c.path.is_not(None))
            left = [_job(r) for r in c.execute(q.order_by(exports.c.created_us))]
        done = 0
        for job in left:
            path = Path(job.path or "")
            if self._stopping.is_set() or not path.is_file():
                continue
            key, why = self._upload(job.id, path, path.stat().st_size)
            _update(self.catalog, job.id, object_key=key, store_error=why, path=None if key else job.path)
            done += key is not None
        return done

    def _upload(self, export_id: str, path: Path, size: int) -> tuple[str | None, str | None]:
        """(key, None) once the store holds all `size` bytes (the local file is then removed), or
        (None, why) and the file stays."""
        key, t = bundle_key(export_id), time.monotonic()
        try:
            self.store.put_file(key, path, content_type="application/zip")
            st = self.store.stat(key)
        except ObjectStoreError as e:
            log.warning("export %s: bundle kept on this node only: %s", export_id, e)
            return None, f"the object store refused the bundle: {e}"[:1000]
        if st is None or st.size != size:
            got = "nothing" if st is None else f"{st.size:,} bytes"
            log.warning("export %s: the store holds %s of the bundle's %d bytes; kept on this node", export_id, got, size)
            return None, f"the object store holds {got} of the bundle's {size:,} bytes"
        path.unlink(missing_ok=True)
        shutil.rmtree(path.parent, ignore_errors=True)
        log.info("export %s: bundle in the object store (%.1f MB in %.2f s)", export_id, size / 1e6, time.monotonic() - t)
        return key, None

    def _now(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def bundle_path(self, export_id: str) -> Path:
        return self.out_dir / export_id / "bundle.zip"

    def submit(self, job: ExportJob, key: KeyInfo | None) -> None:
        with self._lock:
            self._queued.add(job.id)
        self._pool.submit(self._run, job, key)

    def stop(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            left = sorted(self._queued)
        if not left:
            return  # no catalog access at shutdown unless there is something to say
        try:
            with self.catalog.engine.begin() as c:  # the queued ones will not run
                c.execute(sa.update(exports).where(exports.c.id.in_(left), exports.c.state == "queued")
                          .values(state="failed", error="interrupted: the service stopped", finished_us=self._now()))
        except sa.exc.SQLAlchemyError as e:  # the next start of this node marks them
            log.warning("could not mark %d queued export(s) interrupted: %s", len(left), e)

    def _run(self, job: ExportJob, key: KeyInfo | None) -> None:
        with self._lock:
            self._queued.discard(job.id)
        started = time.monotonic()
        _update(self.catalog, job.id, state="running")
        last = [0.0]

        def progress(p: float) -> None:
            if self._stopping.is_set():
                raise ExportStopped("interrupted: the service stopped")
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                _update(self.catalog, job.id, progress=round(p, 4))

        work = self.out_dir / job.id / "work"
        try:
            incident = get_incident(self.catalog, job.incident_id)
            if incident is None:
                raise RuntimeError(f"incident {job.incident_id} no longer exists")
            res = write_bundle(
                self.store, incident, coverage(self.catalog, incident), self.bundle_path(job.id), work,
                self.keys.current(), export_id=job.id,
                exported_by=ExportedBy(job.key_id, job.created_by or "anonymous"), exported_at_us=self._now(),
                version=self.version, audit_head=chain_head(self.catalog), node_id=self.node_id, on_progress=progress,
            )
        except Exception as e:  # the job fails; the service goes on
            stopped = isinstance(e, ExportStopped) or self._stopping.is_set()  # PyAV may wrap it
            error = "interrupted: the service stopped" if stopped else f"{type(e).__name__}: {e}"[:2000]
            if not stopped:
                log.exception("export %s failed", job.id)
            _update(self.catalog, job.id, state="failed", error=error, finished_us=self._now())
            add_audit(self.catalog, "export.failed", key=key, detail={"export_id": job.id, "incident_id": job.incident_id,
                                                                      "error": error[:500]})
            return
        finally:
            shutil.rmtree(work, ignore_errors=True)
        files = [f for f in res.manifest["files"] if f.get("kind") == "video"]
        add_audit(
            self.catalog, "export.complete", key=key, start_us=incident.start_us, end_us=incident.end_us,
            sha256=res.manifest_sha256, bytes=res.bytes,
            detail={"export_id": job.id, "incident_id": incident.id, "bundle_sha256": res.sha256,
                    "signing_key": res.manifest["signing_key"]["fingerprint_sha256"],
                    "files": {f["path"]: f["sha256"] for f in files},
                    "seconds": round(time.monotonic() - started, 3)},
        )
        # still `running` while it goes to the store (done means downloadable from any node); what
        # is written is recorded first, so a restart in between finds the bundle (see __init__)
        _update(self.catalog, job.id, bytes=res.bytes, sha256=res.sha256, manifest_sha256=res.manifest_sha256,
                path=str(res.path))
        stored, why = self._upload(job.id, res.path, res.bytes)
        _update(self.catalog, job.id, state="done", progress=1.0, bytes=res.bytes, sha256=res.sha256,
                manifest_sha256=res.manifest_sha256, path=None if stored else str(res.path), object_key=stored,
                store_error=why, finished_us=self._now())
        log.info("export %s: %d files, %.1f MB in %.1f s", job.id, res.files, res.bytes / 1e6, time.monotonic() - started)
