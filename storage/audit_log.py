"""The audit log: who did what to which recordings, and when (exports, playback, changes)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from storage.api_keys import KeyInfo
from storage.catalog import Catalog, audit

__all__ = ["AuditEntry", "add_audit", "list_audit"]


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
        pk = c.execute(sa.insert(audit).values(**row)).inserted_primary_key
        assert pk is not None
        return int(pk[0])


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
