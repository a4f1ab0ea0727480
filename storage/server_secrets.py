"""Secrets every API node shares through the catalog (the URL-signing secret)."""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa

from storage.catalog import Catalog, server_secrets

__all__ = ["server_secret"]


def _now_us() -> int:
    return int(time.time() * 1_000_000)


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
