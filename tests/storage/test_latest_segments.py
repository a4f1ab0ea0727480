"""The newest segments of a camera for the live view: bounded by time, so on PostgreSQL a month of
day partitions is not probed for every live playlist (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from storage.catalog import Catalog, Segment
from storage.catalog.partitions import MAX_SEGMENT_US
from storage.catalog.segment_rows import latest_query

DAY = 86_400 * 1_000_000
NOW = 1_800_000_000 * 1_000_000
MIN = 60_000_000


def put(cat: Catalog, cam: str, start_us: int) -> Segment:
    seg = Segment(cam, "run", 0, start_us, start_us + MIN, 0, 1000, 10, "h264", 1500, [], state="stored")
    cat.add_segment(seg)
    cat.mark_stored(seg.id or 0, start_us)  # type: ignore[arg-type]
    return seg


def test_only_recent_segments_and_only_recent_partitions(catalog_url: str, tmp_path: Path) -> None:
    cat = Catalog(catalog_url)
    for d in range(30, 0, -1):  # a month of history, one segment a day
        put(cat, "a", NOW - d * DAY)
    recent = [put(cat, "a", NOW - k * MIN) for k in (3, 2, 1)]
    put(cat, "b", NOW - MIN)
    after = NOW - 10 * MIN - 2 * MAX_SEGMENT_US  # what the live index asks: recent enough to matter
    got = cat.latest_segments("a", 4, ended_after_us=after)
    assert [s.start_us for s in got] == [s.start_us for s in recent]
    assert len(cat.latest_segments("a", 4)) == 4  # unbounded: the day-old one too
    assert cat.latest_segments("a", 4, ended_after_us=NOW + DAY) == []
    if cat.is_sqlite:
        return
    with cat.engine.connect() as c:

        def scanned(q: sa.Select) -> set[str]:  # type: ignore[type-arg]
            sql = q.compile(c, compile_kwargs={"literal_binds": True})
            plan = c.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            out: set[str] = set()

            def walk(node: dict) -> None:  # type: ignore[type-arg]
                if "Relation Name" in node:
                    out.add(node["Relation Name"])
                for child in node.get("Plans", []):
                    walk(child)

            walk(plan[0]["Plan"])
            return out

        everything = scanned(latest_query("a", 4))
        bounded = scanned(latest_query("a", 4, after))
    assert len(everything) >= 30, everything
    assert 1 <= len(bounded) <= 2, bounded
