"""The status document of every feed, rebuilt in the background and served as ready-made bytes.

Why: with 4,470 cameras the document is 1.2 MB of JSON (88 kB gzipped) and monitoring systems and
command-center pages poll it every second, 50 at a time. A per-request build (a 4,470-row query,
~1 MB of JSON) costs tens of ms, and even a once-a-second build on the request path stalls every
request queued behind it. So:
- a refresher thread (`start()`/`stop()`, run by the app's lifespan) rebuilds the document every
  `interval_s`; a poll only picks ready bytes (`Encoded`: JSON, its gzip, a weak ETag) and never
  touches the catalog or encodes anything;
- a refresh reads only the status rows written since the last one (`status_rows(updated_since_us=…)`:
  `feed_status` alone, no join, no JSON), compares each (a tuple) with the last read of its camera
  and re-serializes only those that differ; each camera's JSON is kept as bytes and the document is
  a join of them. When nothing changed, the previous bytes (and `generated_us`) are kept;
- camera metadata (name, enabled, tags) is kept here and read again (`camera_meta()`) only on a
  full reload: when cameras change (`cameras_version()`, or `invalidate()` after an API write:
  rebuilt at once, so the next poll sees it), and every `full_every_s` (every status and camera
  again) to catch a row written with a lagging clock on another node;
- filtered variants (`state=`, `tag=`) are built on their first request, then rebuilt by the
  refresher while they keep being asked for (at most `_HOT_FILTERS`), so a dashboard's filter is
  also ready bytes from its second poll on.
Without a running refresher (a bare app in a test, a script), `current()` refreshes on demand at
most every `interval_s`, as before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.catalog import Catalog
from storage.feeds import CameraMeta, StatusRow, camera_meta, feed_row, status_rows
from vigil.clock import Clock

__all__ = ["FEED_STATES", "Encoded", "StatusBoard", "StatusDocument", "accepts_gzip", "etag_matches"]

log = logging.getLogger(__name__)

FEED_STATES = ("starting", "online", "frozen", "black", "tampered", "offline", "unknown", "disabled")
# Re-read statuses this far behind the newest seen: a row stamped just before another commits
# later, and writers' clocks differ a little. Anything later still is caught by the full reload.
_SLACK_US = 1_500_000
# 1.2 MB → 88 kB in 12 ms (level 9: 75 kB in 33 ms; level 1: 113 kB in 4 ms), once per change.
_GZIP_LEVEL = 6
# Filters rebuilt by the refresher: those asked for during the last `_HOT_TTL_S`, at most this many.
_HOT_FILTERS = 32
_HOT_TTL_S = 60.0
_MAX_VARIANTS = 256

FilterKey = tuple[tuple[str, ...], tuple[str, ...]]


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps(…, separators=) makes one per call


def _dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def filter_key(states: Sequence[str] = (), tags: Sequence[str] = ()) -> FilterKey:
    return (tuple(sorted(set(states))), tuple(sorted(set(tags))))


def accepts_gzip(header: str | None) -> bool:
    """True when an Accept-Encoding header admits gzip (`gzip`, `x-gzip` or `*`, not with q=0)."""
    if not header:
        return False
    star = False
    for part in header.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), as If-None-Match uses."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


@dataclass(frozen=True, slots=True)
class Encoded:
    """One variant of the document, ready to send. The weak ETag covers the feeds (not
    `generated_us`) and is shared by both encodings: they are the same document."""

    plain: bytes
    gzip: bytes
    etag: str
    listing_hash: str


@dataclass(slots=True)
class StatusDocument:
    """One refresh: rows in camera order, each with its JSON; an `Encoded` per filter."""

    generated_us: int
    cameras: list[dict[str, Any]]
    json_rows: dict[str, bytes]
    built_mono: float
    variants: dict[FilterKey, Encoded] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self, cams: Sequence[dict[str, Any]] | None = None) -> dict[str, int]:
        c = Counter(x["state"] for x in (self.cameras if cams is None else cams))
        out = {s: c.get(s, 0) for s in FEED_STATES}
        for s, n in c.items():  # states the health sampler may add later
            out.setdefault(s, n)
        return out

    def select(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> list[dict[str, Any]]:
        cams = self.cameras
        if states:
            wanted = set(states)
            cams = [c for c in cams if c["state"] in wanted]
        for t in tags:
            k, sep, v = t.partition(":")
            if sep:
                cams = [c for c in cams if c["tags"].get(k) == v]
            else:
                cams = [c for c in cams if k in c["tags"]]
        return cams

    def encode(self, key: FilterKey, previous: Encoded | None = None) -> Encoded:
        """Build a variant; `previous` (the same filter in the last document) is returned as is
        when its feeds did not change, so its bytes, ETag and `generated_us` stay put."""
        cams = self.select(*key)
        listing = b"[" + b",".join(self.json_rows[c["id"]] for c in cams) + b"]"
        digest = hashlib.blake2b(listing, digest_size=12).hexdigest()
        if previous is not None and previous.listing_hash == digest:
            return previous
        head = f'{{"generated_us":{self.generated_us},"cameras_total":{len(cams)},"counts":'.encode()
        body = head + _dumps(self.counts(cams)) + b',"cameras":' + listing + b"}"
        return Encoded(body, gzip.compress(body, _GZIP_LEVEL, mtime=0), f'W/"{digest}"', digest)

    def variant(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> Encoded:
        """The ready variant for a filter; built here (once per document) if nobody asked before."""
        key = filter_key(states, tags)
        hit = self.variants.get(key)
        if hit is not None:
            return hit
        out = self.encode(key)
        with self._lock:
            if len(self.variants) >= _MAX_VARIANTS:  # a flood of distinct filters: not kept
                return out
            return self.variants.setdefault(key, out)

    def body(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> tuple[bytes, str]:
        """(JSON body, weak ETag) for a filter."""
        v = self.variant(states, tags)
        return v.plain, v.etag


class StatusBoard:
    def __init__(
        self, catalog: Catalog, clock: Clock, interval_s: float = 1.0, full_every_s: float = 30.0
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        self.interval_s = interval_s
        self.full_every_s = full_every_s
        self._doc: StatusDocument | None = None
        self._build_lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._json: dict[str, bytes] = {}
        self._meta: dict[str, CameraMeta] = {}  # camera id → (name, enabled, tags): reloaded with the version
        self._status: dict[str, StatusRow] = {}  # camera id → its status row as last read
        self._order: list[str] = []  # camera ids, sorted
        self._version: tuple[int, int] | None = None
        self._newest_us = 0
        self._full_mono = float("-inf")
        self._hot: dict[FilterKey, float] = {}  # filter → monotonic time it was last asked for
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._refreshed = threading.Condition()  # notified after each refresh (see `wait_for`)
        self.refreshes = 0  # refreshes done, their total and longest wall time: for benchmarks, debugging
        self.refresh_s_total = 0.0
        self.refresh_s_max = 0.0

    # ---- the refresher -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Build the first document, then refresh every `interval_s` in a thread."""
        if self._thread is not None:
            return
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="status-board", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._stop.set()
            self._wake.set()
            t.join(10)

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)  # a real-time tick; the document's times use the clock
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.refresh()
                failing = False
            except Exception:  # noqa: BLE001 - keep serving the last document, retry next tick
                if not failing:
                    log.exception("status board refresh failed; serving the previous document")
                failing = True

    # ---- what handlers and /metrics call -------------------------------------------------------

    def current(self) -> StatusDocument:
        """The latest document. With the refresher running this never touches the catalog."""
        doc = self._doc
        if self._thread is not None and doc is not None:
            return doc
        if doc is not None and self.clock.monotonic() - doc.built_mono < self.interval_s:
            return doc
        # On demand: one thread refreshes; the others keep answering from the previous document.
        if self._build_lock.acquire(blocking=doc is None):
            try:
                doc = self._doc
                if doc is None or self.clock.monotonic() - doc.built_mono >= self.interval_s:
                    self._refresh_locked()
            finally:
                self._build_lock.release()
        return self._doc or doc  # type: ignore[return-value]

    def variant(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> Encoded:
        """The ready bytes for a filter (the whole document without one)."""
        doc = self.current()
        key = filter_key(states, tags)
        if key != ((), ()):
            self._hot[key] = self.clock.monotonic()
        return doc.variant(*key)

    def invalidate(self) -> None:
        """Cameras changed through the API: reload everything now, so the next poll shows it."""
        self._version = None
        if self._thread is None:
            self._doc = None
        else:
            self.refresh()

    def refresh(self) -> StatusDocument:
        with self._build_lock:
            return self._refresh_locked()

    # ---- building -------------------------------------------------------------------------------

    def _take(self, rows: list[StatusRow]) -> None:
        """Status rows read from `feed_status`; only those that differ from the last read of the
        same camera are turned into a dict and re-encoded (a tuple compare for the rest)."""
        meta, status = self._meta, self._status
        for st in rows:
            cid = st[0]
            if st[8] is not None and st[8] > self._newest_us:
                self._newest_us = st[8]
            if status.get(cid) == st:
                continue  # re-read (the slack) but unchanged: keep the row and its JSON as they are
            m = meta.get(cid)
            if m is None:
                continue  # a status left by a removed camera (or one added since the metadata was read)
            status[cid] = st
            row = feed_row(cid, m, st)
            self._rows[cid] = row
            self._json[cid] = _dumps(row)

    def _reload(self) -> None:
        """Everything again: camera metadata (names, tags, enabled) and every status row. Rows and
        their JSON that come out the same are kept (so are the variants built from them)."""
        meta = camera_meta(self.catalog)
        status = {st[0]: st for st in status_rows(self.catalog)}
        rows: dict[str, dict[str, Any]] = {}
        jsons: dict[str, bytes] = {}
        newest = 0
        for cid in sorted(meta):
            st = status.get(cid)
            if st is not None and st[8] is not None and st[8] > newest:
                newest = st[8]
            row = feed_row(cid, meta[cid], st)
            old = self._rows.get(cid)
            if old == row:
                rows[cid], jsons[cid] = old, self._json[cid]
            else:
                rows[cid], jsons[cid] = row, _dumps(row)
        self._meta, self._rows, self._json, self._newest_us = meta, rows, jsons, newest
        self._status = {k: v for k, v in status.items() if k in meta}
        self._order = list(rows)  # sorted above: the document's camera order

    def _hot_keys(self, mono: float) -> list[FilterKey]:
        hot = sorted(((t, k) for k, t in list(self._hot.items()) if mono - t < _HOT_TTL_S), reverse=True)
        self._hot = {k: t for t, k in hot[:_HOT_FILTERS]}
        return [k for _, k in hot[:_HOT_FILTERS]]

    def _refresh_locked(self) -> StatusDocument:
        t0 = time.perf_counter()
        doc = self._build()
        dt = time.perf_counter() - t0
        self.refreshes += 1
        self.refresh_s_total += dt
        self.refresh_s_max = max(self.refresh_s_max, dt)
        with self._refreshed:
            self._refreshed.notify_all()
        return doc

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `predicate()` holds, checking it now and after each refresh (tests, tools:
        waiting on the refresher without polling); False after `timeout_s`."""
        with self._refreshed:
            return self._refreshed.wait_for(predicate, timeout_s)

    def _build(self) -> StatusDocument:
        mono = self.clock.monotonic()
        now_us = int(self.clock.now() * 1_000_000)
        version = self.catalog.cameras_version()
        if version != self._version or mono - self._full_mono >= self.full_every_s:
            self._reload()
            self._version, self._full_mono = version, mono
        else:
            # Documents already out keep their dicts; these copies take the changes.
            self._rows, self._json = dict(self._rows), dict(self._json)
            self._take(status_rows(self.catalog, updated_since_us=self._newest_us - _SLACK_US))
        rows = self._rows
        cams = [rows[k] for k in self._order]
        prev = self._doc
        doc = StatusDocument(generated_us=now_us, cameras=cams, json_rows=self._json, built_mono=mono)
        # The full document always, and the filters pollers use; unchanged ones keep their bytes.
        for key in [((), ()), *self._hot_keys(mono)]:
            doc.variants[key] = doc.encode(key, prev.variants.get(key) if prev is not None else None)
        self._doc = doc
        return doc
