"""API keys (stored hashed), their roles, the audit log, and the server secret for signed URLs.

Why this shape: a key is `vgl_<id>_<secret>`. The id is public (row key, shown in the audit log);
the secret is 32 random bytes, so a plain SHA-256 of it is enough (no password-stretching: there
is nothing to guess) and a check is one primary-key lookup plus a constant-time compare. The full
key is returned once, by `create_key`, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from storage.catalog import Catalog, api_keys, audit, server_secrets

__all__ = [
    "ROLES",
    "AuditEntry",
    "KeyInfo",
    "Role",
    "add_audit",
    "create_key",
    "get_key",
    "list_audit",
    "list_keys",
    "revoke_key",
    "role_allows",
    "server_secret",
    "verify_key",
]

Role = Literal["viewer", "investigator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "investigator", "admin")  # each role can do what those before it can
_RANK: dict[str, int] = {r: i for i, r in enumerate(ROLES)}
_KEY = re.compile(r"^vgl_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")



def _now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    role: Role
    created_us: int
    revoked: bool = False


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


def role_allows(role: str, needed: str) -> bool:
    """True when `role` may do what `needed` may (viewer < investigator < admin)."""
    return role in _RANK and _RANK[role] >= _RANK[needed]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(catalog: Catalog, role: str, name: str, *, now_us: int | None = None) -> str:
    """Make a key and store its hash; returns the full key — the only time it exists in clear."""
    if role not in _RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a key needs a name of 1-100 characters (who or what uses it)")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with catalog.engine.begin() as c:
        c.execute(
            sa.insert(api_keys).values(
                id=key_id,
                name=name,
                role=role,
                secret_hash=_hash(secret),
                created_us=now_us if now_us is not None else _now_us(),
                revoked=False,
            )
        )
    return f"vgl_{key_id}_{secret}"


def _info(r: Any) -> KeyInfo:
    return KeyInfo(id=r.id, name=r.name, role=r.role, created_us=int(r.created_us), revoked=bool(r.revoked))


def get_key(catalog: Catalog, key_id: str) -> KeyInfo | None:
    with catalog.engine.connect() as c:
        r = c.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    return _info(r) if r else None


def verify_key(catalog: Catalog, key: str) -> KeyInfo | None:
    """The key's identity if it is well formed, known, unrevoked and its secret matches; else None."""
    m = _KEY.match(key or "")
    if not m:
        return None
    key_id, secret = m.groups()
    with catalog.engine.connect() as c:
        r = c.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    if r is None:
        hmac.compare_digest(_hash(secret), "0" * 64)  # same work for unknown ids
        return None
    if not hmac.compare_digest(_hash(secret), r.secret_hash) or r.revoked:
        return None
    return _info(r)


def list_keys(catalog: Catalog) -> list[KeyInfo]:
    with catalog.engine.connect() as c:
        return [_info(r) for r in c.execute(sa.select(api_keys).order_by(api_keys.c.created_us, api_keys.c.id))]


def revoke_key(catalog: Catalog, key_id: str) -> bool:
    """Revoke (the row stays so the audit log keeps a name for it). False if unknown."""
    with catalog.engine.begin() as c:
        return bool(c.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked=True)).rowcount)


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


def server_secret(catalog: Catalog, name: str = "url-signing") -> bytes:
    """A 32-byte secret shared by every API node through the catalog; made on first use."""
    sel = sa.select(server_secrets.c.value).where(server_secrets.c.name == name)
    with catalog.engine.connect() as c:
        v = c.execute(sel).scalar_one_or_none()
    if v is None:
        try:
            with catalog.engine.begin() as c:
                c.execute(
                    sa.insert(server_secrets).values(name=name, value=secrets.token_hex(32), created_us=_now_us())
                )
        except sa.exc.IntegrityError:
            pass  # another node made it first: use theirs
        with catalog.engine.connect() as c:
            v = c.execute(sel).scalar_one()
    return bytes.fromhex(v)
