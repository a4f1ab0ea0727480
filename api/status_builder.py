"""Building the status document: the incremental state and the encoded variants.

Why apart from the board (api/status_board.py): the same build runs either in the API process (a
bare app, tests, a catalog only this process can open) or in a child process
(api/status_child.py), which keeps its GIL time away from the event loop serving the polls. The
builder takes its times from the caller (`build(now_us, mono, …)`), so both are driven by the
board's clock.

A build reads only the status rows written since the last one (`status_rows(updated_since_us=…)`:
`feed_status` alone, no join, no JSON), compares each (a tuple) with the last read of its camera and
re-serializes only those that differ; each camera's JSON is kept as bytes and the document is a
join of them. Camera metadata (name, enabled, tags) is read again (`camera_meta()`) only on a full
reload: when cameras change (`cameras_version()`, or a forced reload after an API write), and every
`full_every_s` (every status and camera again, to catch a row written with a lagging clock on
another node). A variant whose feeds did not change keeps its bytes (and so its `generated_us`).
A status its worker has not refreshed for `STALE_AFTER_S` (core/states.py) is shown as `unknown`:
each build checks every camera's last write time against `now_us` (a tuple compare per camera,
~1 ms at 4,470) and re-encodes those that crossed the line either way.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.states import FEED_STATES, STALE_AFTER_US, UNKNOWN
from storage.catalog import Catalog
from storage.feeds import CameraMeta, StatusRow, camera_meta, feed_row, status_rows

__all__ = [
    "MAX_VARIANTS", "Encoded", "FilterKey", "StatusBuilder", "StatusDocument", "Variants", "count_states",
    "filter_key",
]

# Re-read statuses this far behind the newest seen: a row stamped just before another commits
# later, and writers' clocks differ a little. Anything later still is caught by the full reload.
_SLACK_US = 1_500_000
# 1.2 MB → 88 kB in 12 ms (level 9: 75 kB in 33 ms; level 1: 113 kB in 4 ms), once per change.
_GZIP_LEVEL = 6
MAX_VARIANTS = 256

FilterKey = tuple[tuple[str, ...], tuple[str, ...]]

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps(…, separators=) makes one per call


def _dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def filter_key(states: Sequence[str] = (), tags: Sequence[str] = ()) -> FilterKey:
    return (tuple(sorted(set(states))), tuple(sorted(set(tags))))


def count_states(cams: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Cameras per state: every known state (0 when none), then any other the sampler may add."""
    c = Counter(x["state"] for x in cams)
    out = {s: c.get(s, 0) for s in FEED_STATES}
    for s, n in c.items():
        out.setdefault(s, n)
    return out


@dataclass(frozen=True, slots=True)
class Encoded:
    """One variant of the document, ready to send. The weak ETag covers the feeds (not
    `generated_us`) and is shared by both encodings: they are the same document."""

    plain: bytes
    gzip: bytes
    etag: str
    listing_hash: str


class Variants:
    """What both kinds of document answer with: the variant for a filter, ready bytes when it was
    built with the document, else made once per document by `_new_variant` (at most
    `MAX_VARIANTS` kept). Subclasses have `variants` and `_lock`."""

    __slots__ = ()
    variants: dict[FilterKey, Encoded]
    _lock: threading.Lock

    def _new_variant(self, key: FilterKey) -> Encoded:
        raise NotImplementedError

    def variant(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> Encoded:
        """The ready variant for a filter; made here (once per document) if nobody asked before."""
        key = filter_key(states, tags)
        hit = self.variants.get(key)
        if hit is not None:
            return hit
        out = self._new_variant(key)
        with self._lock:
            if len(self.variants) >= MAX_VARIANTS:  # a flood of distinct filters: not kept
                return out
            return self.variants.setdefault(key, out)

    def body(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> tuple[bytes, str]:
        """(JSON body, weak ETag) for a filter."""
        v = self.variant(states, tags)
        return v.plain, v.etag


@dataclass(slots=True)
class StatusDocument(Variants):
    """One build: rows in camera order, each with its JSON; an `Encoded` per filter."""

    generated_us: int
    cameras: list[dict[str, Any]]
    json_rows: dict[str, bytes]
    built_mono: float
    variants: dict[FilterKey, Encoded] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self, cams: Sequence[dict[str, Any]] | None = None) -> dict[str, int]:
        return count_states(self.cameras if cams is None else cams)

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

    def _new_variant(self, key: FilterKey) -> Encoded:
        return self.encode(key)


class StatusBuilder:
    """The incremental state of the document (rows, their JSON, metadata, the last status read of
    each camera) and the build that advances it. Not thread-safe: one caller at a time."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.doc: StatusDocument | None = None
        self.reloads = 0  # full reloads done (tests: a status change must not cause one)
        self._rows: dict[str, dict[str, Any]] = {}
        self._json: dict[str, bytes] = {}
        self._meta: dict[str, CameraMeta] = {}  # camera id → (name, enabled, tags): reloaded with the version
        self._status: dict[str, StatusRow] = {}  # camera id → its status row as last read
        self._order: list[str] = []  # camera ids, sorted
        self._stale: set[str] = set()  # cameras shown `unknown` because their status is stale
        self._version: tuple[int, int] | None = None
        self._newest_us = 0
        self._full_mono = float("-inf")

    def forget_cameras(self) -> None:
        """Cameras changed: the next build reloads everything."""
        self._version = None

    def _render(self, cid: str, m: CameraMeta, st: StatusRow | None, now_us: int) -> dict[str, Any]:
        row = feed_row(cid, m, st, now_us)
        if st is not None and m[1] and row["state"] == UNKNOWN:
            self._stale.add(cid)
        else:
            self._stale.discard(cid)
        return row

    def _take(self, rows: list[StatusRow], now_us: int) -> None:
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
            row = self._render(cid, m, st, now_us)
            self._rows[cid] = row
            self._json[cid] = _dumps(row)

    def _age(self, now_us: int) -> None:
        """Re-render the cameras whose status went stale since the last build, or came back."""
        cutoff = now_us - STALE_AFTER_US
        stale, meta = self._stale, self._meta
        for cid, st in self._status.items():
            updated = st[8]
            if (updated is not None and updated < cutoff) != (cid in stale):
                m = meta.get(cid)
                if m is None or not m[1]:
                    continue  # removed, or disabled: never stale
                row = self._render(cid, m, st, now_us)
                self._rows[cid] = row
                self._json[cid] = _dumps(row)

    def _reload(self, now_us: int) -> None:
        """Everything again: camera metadata (names, tags, enabled) and every status row. Rows and
        their JSON that come out the same are kept (so are the variants built from them)."""
        self.reloads += 1
        self._stale = set()  # rendered again below
        meta = camera_meta(self.catalog)
        status = {st[0]: st for st in status_rows(self.catalog)}
        rows: dict[str, dict[str, Any]] = {}
        jsons: dict[str, bytes] = {}
        newest = 0
        for cid in sorted(meta):
            st = status.get(cid)
            if st is not None and st[8] is not None and st[8] > newest:
                newest = st[8]
            row = self._render(cid, meta[cid], st, now_us)
            old = self._rows.get(cid)
            if old == row:
                rows[cid], jsons[cid] = old, self._json[cid]
            else:
                rows[cid], jsons[cid] = row, _dumps(row)
        self._meta, self._rows, self._json, self._newest_us = meta, rows, jsons, newest
        self._status = {k: v for k, v in status.items() if k in meta}
        self._order = list(rows)  # sorted above: the document's camera order

    def build(self, now_us: int, mono: float, hot: Sequence[FilterKey], full_every_s: float) -> StatusDocument:
        """A new document at `now_us`: the whole document and the `hot` filters encoded; a variant
        whose feeds did not change keeps the previous document's bytes."""
        version = self.catalog.cameras_version()
        if version != self._version or mono - self._full_mono >= full_every_s:
            self._reload(now_us)
            self._version, self._full_mono = version, mono
        else:
            # Documents already out keep their dicts; these copies take the changes.
            self._rows, self._json = dict(self._rows), dict(self._json)
            self._take(status_rows(self.catalog, updated_since_us=self._newest_us - _SLACK_US), now_us)
            self._age(now_us)
        rows = self._rows
        cams = [rows[k] for k in self._order]
        prev = self.doc
        doc = StatusDocument(generated_us=now_us, cameras=cams, json_rows=self._json, built_mono=mono)
        for key in [((), ()), *hot]:
            doc.variants[key] = doc.encode(key, prev.variants.get(key) if prev is not None else None)
        self.doc = doc
        return doc
