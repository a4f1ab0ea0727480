"""The catalog through PgBouncer in transaction mode (the connection budget's pooler): two nodes'
catalogs, many threads, two server connections — migrations, day partitions, ordered events,
leases and a whole-day retention drop all work, because vigil's locks are transaction-scoped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.catalog import Camera, Catalog, Event, FeedStatus
from storage.catalog.partitions import DAY_US
from storage.leases import LeaseKeeper
from storage.object_store import LocalStore
from storage.retention import apply_retention
from harness.fakes import FakeClock
from harness.pgbouncer import PgBouncer
from tests.storage.test_retention import put_segment

NOW = 1_800_000_000 * 1_000_000


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    b = PgBouncer(pool_size=2)
    yield b
    b.stop()


def test_two_nodes_share_two_server_connections(pg_url: str, bouncer: PgBouncer, tmp_path: Path) -> None:
    url = bouncer.url(pg_url.rsplit("/", 1)[1])
    node_a, node_b = Catalog(url), Catalog(url)  # both run the migrations' check through the pooler
    store = LocalStore(tmp_path / "obj")
    for i in range(6):
        node_a.upsert_camera(Camera(f"cam-{i}", "rtsp://h/x"), NOW)

    def events(cat: Catalog, cam: str) -> None:
        for k in range(15):
            cat.put_status_with_event(FeedStatus(cam, "online", NOW + k, NOW + k),
                                      Event(cam, NOW + k, "state", "starting", "online"))

    threads = [threading.Thread(target=events, args=(cat, f"cam-{i}")) for i, cat in enumerate([node_a, node_b] * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e.id for e in node_b.events_since(0, limit=1000)]
    assert len(ids) == 90 and ids == sorted(ids)

    clock = FakeClock(NOW / 1e6)
    keepers = [LeaseKeeper(cat, name, capacity=10, ttl_s=15, clock=clock) for cat, name in ((node_a, "a"), (node_b, "b"))]
    for _ in range(10):  # until the shares settle: three cameras each (a give-back waits out its grace)
        held = [k.heartbeat() for k in keepers]
        if len(held[0]) == len(held[1]) == 3:
            break
        clock.advance(4)
    assert not set(held[0]) & set(held[1]) and len(held[0]) + len(held[1]) == 6  # each camera one node

    old = [put_segment(node_a, store, "cam-0", NOW - 40 * DAY_US + k * 60_000_000) for k in range(3)]
    put_segment(node_b, store, "cam-1", NOW - DAY_US)
    res = apply_retention(node_b, store, default_days=30, clock=FakeClock(NOW / 1e6))
    assert res.days_dropped == 1 and all(store.stat(s.object_key) is None for s in old)
    assert node_a.segment_totals() == {"cam-1": (1, 1000)}

    direct = sa.create_engine(pg_url)
    with direct.connect() as c:  # everything above went through at most two server connections
        servers = c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar_one()
    assert servers <= 2
    direct.dispose()
    node_a.close()
    node_b.close()
