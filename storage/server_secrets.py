"""Secrets every API node shares through the catalog (the URL-signing secret), sealed with the
node's key (storage/sealing.py): a copy of the catalog alone signs nothing."""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa

from storage.catalog import Catalog, server_secrets
from storage.sealing import SealError

__all__ = ["reseal_server_secrets", "server_secret"]


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def server_secret(catalog: Catalog, name: str = "url-signing") -> bytes:
    """A 32-byte secret shared by every API node through the catalog; made on first use. One
    stored in clear by an older version is sealed the first time it is read."""
    if catalog.sealer is None:
        raise SealError(f"the {name} secret is sealed in the catalog: this process needs the secrets key")
    sealer = catalog.sealer
    sel = sa.select(server_secrets.c.value).where(server_secrets.c.name == name)
    with catalog.engine.connect() as c:
        v = c.execute(sel).scalar_one_or_none()
    if v is None:
        try:
            with catalog.engine.begin() as c:
                c.execute(
                    sa.insert(server_secrets).values(
                        name=name, value=sealer.seal(secrets.token_hex(32)), created_us=_now_us()
                    )
                )
        except sa.exc.IntegrityError:
            pass  # another node made it first: use theirs
        with catalog.engine.connect() as c:
            v = c.execute(sel).scalar_one()
    plain = sealer.unseal(v)
    if v == plain:  # legacy clear text
        reseal_server_secrets(catalog)
    return bytes.fromhex(plain)


def reseal_server_secrets(catalog: Catalog) -> int:
    """Every server secret sealed (again) with the first key: after a key rotation, or to seal
    one an older version stored in clear. Returns how many."""
    assert catalog.sealer is not None
    with catalog.engine.begin() as c:
        rows = c.execute(sa.select(server_secrets.c.name, server_secrets.c.value)).all()
        for name, value in rows:
            c.execute(
                sa.update(server_secrets).where(server_secrets.c.name == name).values(value=catalog.sealer.reseal(value))
            )
    return len(rows)
