"""Evidence signing keys published in the catalog: every node's public keys in one place.

Why the catalog: a bundle made on any node of a cluster is downloaded from any node, and an
investigator or a court must find the public key of every key vigil ever signed with — its node,
when it was made and when it was retired — without the config of the node that made it. Only
public keys are here; the private key stays a file on its node (evidence/signing_keys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.catalog.base import CatalogBase
from storage.catalog.tables import signing_keys

__all__ = ["PublishedKey", "SigningKeyRows"]


@dataclass(frozen=True, slots=True)
class PublishedKey:
    fingerprint: str
    pem: str
    node_id: str
    created_us: int
    retired_us: int | None

    @property
    def current(self) -> bool:
        return self.retired_us is None

    def current_at(self, at_us: int) -> bool:
        """Whether this key was its node's key in use at `at_us` (made by then, not yet retired)."""
        return self.created_us <= at_us and (self.retired_us is None or at_us < self.retired_us)


def _key(r: sa.Row) -> PublishedKey:  # type: ignore[type-arg]
    return PublishedKey(r.fingerprint, r.pem, r.node_id, int(r.created_us),
                        None if r.retired_us is None else int(r.retired_us))


class SigningKeyRows(CatalogBase):
    def publish_signing_key(self, fingerprint: str, pem: str, node_id: str, created_us: int,
                            retired_us: int | None = None) -> bool:
        """Insert the key if it is not there (True when inserted). A key already published keeps
        its node and creation time — the first to publish it made it; `retired_us` is set only on a
        key not retired yet. Two processes publishing the same key at once: one insert wins."""
        try:
            with self._begin() as c:
                c.execute(sa.insert(signing_keys).values(fingerprint=fingerprint, pem=pem, node_id=node_id,
                                                         created_us=created_us, retired_us=retired_us))
            return True
        except IntegrityError:
            if retired_us is not None:
                self.retire_signing_key(fingerprint, retired_us)
            return False

    def retire_signing_key(self, fingerprint: str, at_us: int) -> None:
        with self._begin() as c:
            c.execute(sa.update(signing_keys)
                      .where(signing_keys.c.fingerprint == fingerprint, signing_keys.c.retired_us.is_(None))
                      .values(retired_us=at_us))

    def retire_other_keys_of(self, node_id: str, current: str, at_us: int) -> int:
        """Retire every key of `node_id` still marked current but `current` (a node has one key
        in use; one whose key file was lost and remade leaves the old one behind). Rows of the
        unnamed node ("") are left alone: several single nodes may share that name."""
        if not node_id:
            return 0
        with self._begin() as c:
            return int(c.execute(sa.update(signing_keys)
                                 .where(signing_keys.c.node_id == node_id, signing_keys.c.fingerprint != current,
                                        signing_keys.c.retired_us.is_(None))
                                 .values(retired_us=at_us)).rowcount)

    def published_signing_keys(self) -> list[PublishedKey]:
        """Every published key, oldest first."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(signing_keys).order_by(signing_keys.c.created_us, signing_keys.c.fingerprint)).all()
        return [_key(r) for r in rows]

    def signing_key(self, fingerprint: str) -> PublishedKey | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(signing_keys).where(signing_keys.c.fingerprint == fingerprint)).one_or_none()
        return None if r is None else _key(r)
