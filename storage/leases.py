"""Camera leases: which node records which camera, decided by PostgreSQL row locks.

Each node runs `LeaseKeeper.heartbeat()` every `ttl/3`: it renews the leases it still holds,
gives back what exceeds its fair share, and claims free or expired leases up to that share with
`SELECT … FOR UPDATE SKIP LOCKED` (on SQLite, a single-node catalog, the write lock serialises the
same statements). Every claim increments the camera's `epoch` — the fencing token stored with each
segment. No home-made consensus: the database is the only arbiter.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.catalog import Catalog, cameras, leases, nodes
from core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Lease", "LeaseKeeper", "fair_shares"]

log = logging.getLogger("vigil.leases")


@dataclass(frozen=True, slots=True)
class Lease:
    camera_id: str
    epoch: int
    expires_us: int


def fair_shares(total: int, capacities: dict[str, int]) -> dict[str, int]:
    """Cameras per node in proportion to capacity (largest remainder), capped by capacity.

    Every node computes the same answer from the same node list, so shares sum to `total`
    without any node telling another what to do.
    """
    if not capacities or total <= 0:
        return {n: 0 for n in capacities}
    cap_sum = sum(capacities.values())
    target = min(total, cap_sum)
    quotas = {n: target * c / cap_sum for n, c in capacities.items()}
    shares = {n: min(capacities[n], math.floor(q)) for n, q in quotas.items()}
    left = target - sum(shares.values())
    for n in sorted(quotas, key=lambda n: (-(quotas[n] - math.floor(quotas[n])), n)):
        if left <= 0:
            break
        if shares[n] < capacities[n]:
            shares[n] += 1
            left -= 1
    return shares


class LeaseKeeper:
    def __init__(
        self,
        catalog: Catalog,
        node_id: str,
        *,
        capacity: int,
        ttl_s: float = 15.0,
        clock: Clock = SYSTEM_CLOCK,
        api_url: str | None = None,
    ) -> None:
        self.api_url = api_url
        self.catalog = catalog
        self.node_id = node_id
        self.capacity = capacity
        self.ttl_us = int(ttl_s * 1_000_000)
        self.grace_us = min(3_000_000, self.ttl_us // 2)
        self.clock = clock
        self.held: dict[str, Lease] = {}

    def _now_us(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def _insert_ignore(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        dialect = conn.dialect.name
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        conn.execute(ins.on_conflict_do_nothing(), rows)

    def heartbeat(self) -> dict[str, Lease]:
        """One round: renew, rebalance, claim. Returns the leases this node holds now."""
        now = self._now_us()
        expires = now + self.ttl_us
        with self.catalog.engine.begin() as c:
            ins = (postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert)(nodes)
            c.execute(
                ins.values(node_id=self.node_id, capacity=self.capacity, heartbeat_us=now, api_url=self.api_url)
                .on_conflict_do_update(
                    index_elements=["node_id"], set_={"capacity": self.capacity, "heartbeat_us": now, "api_url": self.api_url}
                )
            )
            enabled = [r[0] for r in c.execute(sa.select(cameras.c.id).where(cameras.c.enabled == sa.true()))]
            known = {r[0] for r in c.execute(sa.select(leases.c.camera_id))}
            self._insert_ignore(c, leases, [{"camera_id": cid, "epoch": 0, "expires_us": 0} for cid in enabled if cid not in known])
            # leases of cameras that were removed or disabled are let go
            c.execute(
                sa.update(leases)
                .where(leases.c.node_id == self.node_id, leases.c.camera_id.not_in(enabled))
                .values(node_id=None, expires_us=0)
            )
            c.execute(
                sa.update(leases)
                .where(leases.c.node_id == self.node_id, leases.c.expires_us > now)
                .values(expires_us=expires)
            )
            mine = {
                r.camera_id: Lease(r.camera_id, int(r.epoch), int(r.expires_us))
                for r in c.execute(
                    sa.select(leases).where(leases.c.node_id == self.node_id, leases.c.expires_us > now)
                )
            }
            live = {
                r.node_id: int(r.capacity)
                for r in c.execute(sa.select(nodes).where(nodes.c.heartbeat_us > now - self.ttl_us))
            }
            live[self.node_id] = self.capacity
            share = fair_shares(len(enabled), live)[self.node_id]
            if len(mine) > share:
                # Given back with a short grace instead of at once: our workers stop at the next
                # packet, and nobody may claim the camera before they have.
                give_back = sorted(mine)[share:]
                c.execute(
                    sa.update(leases)
                    .where(leases.c.camera_id.in_(give_back), leases.c.node_id == self.node_id)
                    .values(node_id=None, expires_us=now + self.grace_us)
                )
                for cid in give_back:
                    del mine[cid]
                log.info("leases: %s gives back %d camera(s) to rebalance (share %d)", self.node_id, len(give_back), share)
            elif len(mine) < share:
                free = (
                    sa.select(leases.c.camera_id)
                    .where(leases.c.camera_id.in_(enabled))
                    .where(leases.c.expires_us <= now)
                    .order_by(leases.c.camera_id)
                    .limit(share - len(mine))
                    .with_for_update(skip_locked=True)
                )
                claim = [r[0] for r in c.execute(free)]
                if claim:
                    c.execute(
                        sa.update(leases)
                        .where(leases.c.camera_id.in_(claim))
                        .values(node_id=self.node_id, epoch=leases.c.epoch + 1, expires_us=expires)
                    )
                    for r in c.execute(sa.select(leases).where(leases.c.camera_id.in_(claim))):
                        mine[r.camera_id] = Lease(r.camera_id, int(r.epoch), int(r.expires_us))
                    log.info("leases: %s claims %d camera(s) (share %d)", self.node_id, len(claim), share)
        lost = set(self.held) - set(mine)
        if lost:
            log.warning("leases: %s no longer holds %s", self.node_id, ", ".join(sorted(lost)))
        self.held = mine
        return mine

    def release_all(self) -> None:
        """Clean shutdown: give every lease back at once, so other nodes need not wait for expiry."""
        with self.catalog.engine.begin() as c:
            c.execute(sa.update(leases).where(leases.c.node_id == self.node_id).values(node_id=None, expires_us=0))
            c.execute(sa.delete(nodes).where(nodes.c.node_id == self.node_id))
        self.held = {}
