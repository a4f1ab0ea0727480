"""The status document of every feed, refreshed at most once a second and shared by every poller.

Why: with 4,470 cameras a per-request build (a 4,470-row query and ~1 MB of JSON) costs tens of ms;
ten dashboards polling each second would spend half a core on identical answers, and every build
holds the GIL long enough to stall other requests. So:
- a refresh reads only the statuses written since the last one (`feed_rows(updated_since_us=…)`),
  and re-serializes only those cameras; each camera's JSON is kept as bytes and the document is a
  join of them;
- a full reload happens when cameras change (`cameras_version()`), and every `full_every_s` to
  catch a row written with a lagging clock on another node;
- each filter's body and ETag are computed once per refresh; an unchanged poll compares ETags (304).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.catalog import Catalog
from storage.feeds import feed_rows
from vigil.clock import Clock

__all__ = ["FEED_STATES", "StatusBoard", "StatusDocument"]

FEED_STATES = ("starting", "online", "frozen", "black", "tampered", "offline", "unknown", "disabled")
# Re-read statuses this far behind the newest seen: a row stamped just before another commits
# later, and writers' clocks differ a little. Anything later still is caught by the full reload.
_SLACK_US = 1_500_000


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(slots=True)
class StatusDocument:
    """One refresh: rows in camera order, each with its JSON; bodies per filter made on demand."""

    generated_us: int
    cameras: list[dict[str, Any]]
    json_rows: dict[str, bytes]
    built_mono: float
    _bodies: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[bytes, str]] = field(default_factory=dict)
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

    def body(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> tuple[bytes, str]:
        """(JSON body, weak ETag) for a filter; made once per refresh."""
        key = (tuple(sorted(set(states))), tuple(sorted(set(tags))))
        with self._lock:
            hit = self._bodies.get(key)
        if hit is not None:
            return hit
        cams = self.select(*key)
        listing = b"[" + b",".join(self.json_rows[c["id"]] for c in cams) + b"]"
        head = f'{{"generated_us":{self.generated_us},"cameras_total":{len(cams)},"counts":'.encode()
        body = head + _dumps(self.counts(cams)) + b',"cameras":' + listing + b"}"
        # weak: it covers the feeds, not generated_us, so an unchanged board stays 304
        out = (body, f'W/"{hashlib.blake2b(listing, digest_size=12).hexdigest()}"')
        with self._lock:
            if len(self._bodies) > 256:
                self._bodies.clear()
            self._bodies[key] = out
        return out


class StatusBoard:
    def __init__(self, catalog: Catalog, clock: Clock, max_age_s: float = 1.0, full_every_s: float = 30.0) -> None:
        self.catalog = catalog
        self.clock = clock
        self.max_age_s = max_age_s
        self.full_every_s = full_every_s
        self._doc: StatusDocument | None = None
        self._build_lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._json: dict[str, bytes] = {}
        self._version: tuple[int, int] | None = None
        self._newest_us = 0
        self._full_mono = float("-inf")

    def invalidate(self) -> None:
        """Cameras changed through the API: the next poll reloads everything."""
        self._version = None
        self._doc = None

    def current(self) -> StatusDocument:
        doc = self._doc
        if doc is not None and self.clock.monotonic() - doc.built_mono < self.max_age_s:
            return doc
        # One thread refreshes; the others keep answering from the previous document meanwhile.
        if self._build_lock.acquire(blocking=doc is None):
            try:
                doc = self._doc
                if doc is None or self.clock.monotonic() - doc.built_mono >= self.max_age_s:
                    doc = self._refresh()
                    self._doc = doc
            finally:
                self._build_lock.release()
        return self._doc or doc  # type: ignore[return-value]

    def _take(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._rows[r["id"]] = r
            self._json[r["id"]] = _dumps(r)
            if r["updated_us"] is not None and r["updated_us"] > self._newest_us:
                self._newest_us = r["updated_us"]

    def _refresh(self) -> StatusDocument:
        mono = self.clock.monotonic()
        now_us = int(self.clock.now() * 1_000_000)
        version = self.catalog.cameras_version()
        if version != self._version or mono - self._full_mono >= self.full_every_s:
            self._rows, self._json, self._newest_us = {}, {}, 0
            self._take(feed_rows(self.catalog))
            self._version, self._full_mono = version, mono
        else:
            self._rows, self._json = dict(self._rows), dict(self._json)  # documents already out stay as they were
            self._take(feed_rows(self.catalog, updated_since_us=self._newest_us - _SLACK_US))
        cams = [self._rows[k] for k in sorted(self._rows)]
        return StatusDocument(generated_us=now_us, cameras=cams, json_rows=self._json, built_mono=mono)
