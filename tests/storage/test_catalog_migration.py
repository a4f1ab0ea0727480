"""The catalog-scale migration on a catalog with data in place, on SQLite and PostgreSQL: rows the
old schema wrote (JSON fragment index, stored object key) read back the same after the upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.catalog import Catalog, Fragment, Segment, metadata
from storage.keys import segment_key
from storage.migrate import upgrade

S = 1_000_000
DAY = 86_400 * S
DAY_START = (1_800_000_000 * S // DAY + 1) * DAY  # a UTC midnight
OLD_INSERT = sa.text(
    "INSERT INTO segments (camera_id, run_id, seq, start_us, end_us, media_start_us, bytes, header_bytes, object_key, "
    "video_codec, frames, fragments, recovered, state, stored_us, node_id) VALUES (:cam, 'run1', :seq, :start, :end, 0, "
    ":bytes, 800, :key, 'h264', 1500, :frags, false, :state, :stored, 'n1')"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("pg_url"))


def frags(n: int, base: int) -> list[Fragment]:
    return [Fragment(base + i * 250_000, 250_000, i * 2 * S, 2 * S) for i in range(n)]


def test_rows_written_by_the_old_schema_read_back_after_the_upgrade(url: str) -> None:
    eng = sa.create_engine(url)
    upgrade(eng, "0002")
    day_start = DAY_START  # rows on two UTC days (two partitions on PostgreSQL)
    rows = [
        ("cam-a", 0, day_start - 60 * S, frags(30, 800), "stored"),
        ("cam-a", 1, day_start, frags(30, 6 * 2**32), "stored"),  # an offset past 16 GB
        ("cam-b", 0, day_start + 60 * S, frags(3, 800), "spooled"),
    ]
    with eng.begin() as c:
        for cam, seq, start, fr, state in rows:
            c.execute(OLD_INSERT, {
                "cam": cam, "seq": seq, "start": start, "end": start + 60 * S, "bytes": 7_500_800,
                "key": segment_key(cam, start), "state": state, "stored": start if state == "stored" else None,
                "frags": json.dumps([[f.offset, f.size, f.start_off_us, f.duration_us] for f in fr]),
            })
        old_ids = [r[0] for r in c.execute(sa.text("SELECT id FROM segments ORDER BY id"))]
    eng.dispose()

    cat = Catalog(url)  # what a node does at start: upgrade to head
    got = cat.segments_for()
    assert [(s.camera_id, s.seq, s.start_us, s.fragments, s.state, s.node_id) for s in got] == [
        (cam, seq, start, fr, state, "n1") for cam, seq, start, fr, state in rows
    ]
    assert [s.id for s in got] == old_ids
    assert [s.start_us for s in cat.segments_between("cam-a", day_start - 1, day_start + 1)] == [day_start - 60 * S, day_start]
    key = segment_key("cam-a", day_start)
    assert cat.get_segment_by_key(key).fragments == rows[1][3]  # type: ignore[union-attr]
    assert cat.segment_totals() == {"cam-a": (2, 15_001_600)}  # spooled rows are not stored yet
    assert [s.camera_id for s in cat.pending_segments()] == ["cam-b"]

    new = Segment("cam-b", "run2", 0, day_start + 3 * DAY, day_start + 3 * DAY + 60 * S, 0, 100, 10, "h264", 1, frags(1, 10))
    assert cat.add_segment(new) > max(old_ids)  # ids continue where the old table left them
    assert cat.add_segment(new) == new.id  # a retried registration finds its row
    cat.mark_stored(new.id or 0, 1)
    assert cat.segment_totals()["cam-b"] == (1, 100)

    with cat.engine.connect() as c:
        if not cat.is_sqlite:
            parts = c.execute(sa.text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'segments'::regclass")).scalar_one()
            assert parts == 3
        diff = compare_metadata(
            MigrationContext.configure(c, opts={"include_name": lambda name, kind, _p: not (
                kind == "table" and name.startswith("segments_d"))}),
            metadata,
        )
    assert diff == []
    cat.close()
