"""API keys, stored hashed.

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
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.roles import ALL_ROLES, Role
from storage.catalog import Catalog, api_keys

__all__ = ["KeyInfo", "create_key", "get_key", "list_keys", "revoke_key", "verify_key"]

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


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(catalog: Catalog, role: str, name: str, *, now_us: int | None = None) -> str:
    """Make a key and store its hash; returns the full key — the only time it exists in clear."""
    if role not in ALL_ROLES:
        raise ValueError(f"role must be one of {', '.join(ALL_ROLES)}, got {role!r}")
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
