"""The audit log: who did what to which recordings, and when (exports, playback, changes).

A hash chain makes it evidence: every row carries `prev_sha256` (the previous row's digest) and
`row_sha256` = SHA-256 of its own content and `prev_sha256` (`row_digest`), so an edited row no
longer matches its digest and a deleted or inserted row breaks the link of the row after it
(`verify_chain`). Appends are serialized so two writers never chain onto the same row: the row is
inserted first (on SQLite that takes the database's one write lock; on PostgreSQL a
transaction-scoped advisory lock is taken before it), then its predecessor is read and the digests
written, all in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from storage.api_keys import KeyInfo
from storage.catalog import Catalog, audit

__all__ = ["GENESIS", "AuditEntry", "ChainProblem", "ChainReport", "add_audit", "chain_head", "list_audit", "row_digest",
           "verify_chain"]

GENESIS = "0" * 64  # the `prev_sha256` of the first chained row
_CHAIN_LOCK = sa.text("SELECT pg_advisory_xact_lock(7391018)")
_CONTENT = ("id", "at_us", "key_id", "key_name", "action", "camera_id", "start_us", "end_us", "sha256", "bytes",
            "detail")


def _now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_us: int
    key_id: str | None
    key_name: str | None
    action: str
    camera_id: str | None
    start_us: int | None
    end_us: int | None
    sha256: str | None
    bytes: int | None
    detail: dict[str, Any] = field(default_factory=dict)
    prev_sha256: str | None = None
    row_sha256: str | None = None


def row_digest(row: dict[str, Any], prev_sha256: str) -> str:
    """SHA-256 (hex) of one row's content and its predecessor's digest: canonical JSON (sorted
    keys, no spaces, ASCII), so any reader — in any language — recomputes the same bytes."""
    content = {k: row.get(k) for k in _CONTENT}
    content["detail"] = content["detail"] or {}
    content["prev_sha256"] = prev_sha256
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def add_audit(
    catalog: Catalog,
    action: str,
    *,
    key: KeyInfo | None = None,
    at_us: int | None = None,
    camera_id: str | None = None,
    start_us: int | None = None,
    end_us: int | None = None,
    sha256: str | None = None,
    bytes: int | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one audit entry; returns its id."""
    row = {
        "at_us": at_us if at_us is not None else _now_us(),
        "key_id": key.id if key else None,
        "key_name": key.name if key else None,
        "action": action,
        "camera_id": camera_id,
        "start_us": start_us,
        "end_us": end_us,
        "sha256": sha256,
        "bytes": bytes,
        "detail": detail or {},
    }
    with catalog.engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(_CHAIN_LOCK)  # writers chain one at a time; released at commit
        pk = c.execute(sa.insert(audit).values(**row)).inserted_primary_key  # SQLite: the write lock
        assert pk is not None
        rid = int(pk[0])
        prev = c.execute(
            sa.select(audit.c.row_sha256).where(audit.c.id < rid).order_by(audit.c.id.desc()).limit(1)
        ).first()
        prev_sha = (prev[0] if prev is not None else None) or GENESIS
        digest = row_digest({**row, "id": rid}, prev_sha)
        c.execute(sa.update(audit).where(audit.c.id == rid).values(prev_sha256=prev_sha, row_sha256=digest))
        return rid


def chain_head(catalog: Catalog) -> tuple[int, str]:
    """(id, row_sha256) of the newest row — what an export's manifest anchors the log to."""
    with catalog.engine.connect() as c:
        r = c.execute(sa.select(audit.c.id, audit.c.row_sha256).order_by(audit.c.id.desc()).limit(1)).first()
    return (int(r[0]), r[1] or GENESIS) if r is not None else (0, GENESIS)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    row_id: int
    kind: str  # edited | broken-link | unchained | missing-anchor
    message: str


@dataclass(slots=True)
class ChainReport:
    rows: int = 0
    unchained_before: int = 0  # rows written before the chain existed (no digests), at the start
    head_id: int = 0
    head_sha256: str = GENESIS
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(catalog: Catalog, page: int = 5000) -> Iterator[dict[str, Any]]:
    after = -1
    while True:
        with catalog.engine.connect() as c:
            batch = [dict(r._mapping) for r in c.execute(
                sa.select(audit).where(audit.c.id > after).order_by(audit.c.id).limit(page))]
        yield from batch
        if len(batch) < page:
            return
        after = int(batch[-1]["id"])


def verify_chain(catalog: Catalog, anchors: dict[int, str] | None = None) -> ChainReport:
    """Walk the log oldest first and name every row that breaks the chain.

    - a row whose `row_sha256` is not the digest of its content: **edited** (or forged);
    - a row whose `prev_sha256` is not the digest of the row before it: a row was **deleted** or
      **inserted** between them (or that link edited);
    - `anchors` (row id → digest, e.g. from signed export manifests) catch a rewrite of the whole
      tail and the deletion of the newest rows, which a chain alone cannot.
    """
    rep = _ChainWalk()
    for row in _rows(catalog):
        rep.add(row)
    return rep.finish(anchors or {})


class _ChainWalk:
    """The chain check row by row (split out so `verify_chain` reads as its rule list)."""

    def __init__(self) -> None:
        self.rep = ChainReport()
        self.prev: dict[str, Any] | None = None
        self.seen: dict[int, str] = {}
        self.chained = False

    def add(self, row: dict[str, Any]) -> None:
        rep, rid = self.rep, int(row["id"])
        rep.rows += 1
        if row["row_sha256"] is None and row["prev_sha256"] is None:
            if self.chained:
                rep.problems.append(ChainProblem(rid, "unchained", f"row {rid} has no digests after chained rows: inserted by hand"))
            else:
                rep.unchained_before += 1
            self.prev = row
            return
        want = row_digest(row, row["prev_sha256"] or "")
        if want != row["row_sha256"]:
            rep.problems.append(ChainProblem(rid, "edited", f"row {rid} ({row['action']}) was edited: its content no longer matches its digest"))
        expected_prev = GENESIS if self.prev is None or self.prev["row_sha256"] is None else self.prev["row_sha256"]
        if self.chained and row["prev_sha256"] != expected_prev:
            before = int(self.prev["id"]) if self.prev else 0
            rep.problems.append(ChainProblem(
                rid, "broken-link",
                f"row {rid} does not follow row {before}: a row between them was deleted or inserted "
                f"(or row {rid}'s link edited)"))
        self.chained = True
        self.seen[rid] = row["row_sha256"]
        rep.head_id, rep.head_sha256 = rid, row["row_sha256"]
        self.prev = row

    def finish(self, anchors: dict[int, str]) -> ChainReport:
        for rid, digest in sorted(anchors.items()):
            got = self.seen.get(rid)
            if got is None:
                self.rep.problems.append(ChainProblem(rid, "missing-anchor", f"row {rid}, named by a signed manifest, is gone: deleted"))
            elif got != digest:
                self.rep.problems.append(ChainProblem(rid, "missing-anchor", f"row {rid} differs from the digest a signed manifest holds: the log was rewritten"))
        return self.rep


def list_audit(
    catalog: Catalog,
    *,
    since: int = 0,
    limit: int = 100,
    camera_id: str | None = None,
    action: str | None = None,
    key_id: str | None = None,
) -> list[AuditEntry]:
    """Entries with id > since, oldest first."""
    q = sa.select(audit).where(audit.c.id > since).order_by(audit.c.id).limit(limit)
    if camera_id is not None:
        q = q.where(audit.c.camera_id == camera_id)
    if action is not None:
        q = q.where(audit.c.action == action)
    if key_id is not None:
        q = q.where(audit.c.key_id == key_id)
    with catalog.engine.connect() as c:
        out = []
        for r in c.execute(q):
            m = dict(r._mapping)
            out.append(AuditEntry(**{**m, "detail": m["detail"] or {}}))
        return out
