"""Day partitions of `segments` on PostgreSQL: made ahead of the recorders, dropped whole by retention.

Why: deleting a city-day row by row rewrites ~6.4 M rows (WAL, dead tuples, vacuum) and its cost
grows with the table; detaching and dropping the day's table costs the same at 1 day or 30 days of
history. A partition holds the segments whose `start_us` falls in one UTC day, named
`segments_dYYYYMMDD`. SQLite has one plain table and none of this.

A partition is created before its first row: by `ensure_days` from the insert path (remembered per
process, so it costs one catalog query per process and day) and a few days ahead by retention.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["DAY_US", "MAX_SEGMENT_US", "DayPartition", "day_of", "day_partitions", "ensure_days", "partition_name"]

DAY_US = 86_400 * 1_000_000
# The longest a segment can be (the segmenter's 600 s ceiling plus slack): a segment starting before
# `t - MAX_SEGMENT_US` has ended by `t`, which lets range queries bound start_us from below.
MAX_SEGMENT_US = 660 * 1_000_000
_LOCK = 0x76677070  # serialises partition DDL between nodes
_NAME = re.compile(r"^segments_d(\d{8})(_gone)?$")  # `_gone`: detached by retention, being deleted


@dataclass(frozen=True, slots=True)
class DayPartition:
    name: str
    day: int  # days since the epoch
    attached: bool

    @property
    def start_us(self) -> int:
        return self.day * DAY_US

    @property
    def end_us(self) -> int:
        return (self.day + 1) * DAY_US


def day_of(us: int) -> int:
    return us // DAY_US


def partition_name(day: int) -> str:
    return f"segments_d{datetime.fromtimestamp(day * 86_400, tz=timezone.utc):%Y%m%d}"


def _day_from_name(name: str) -> int | None:
    m = _NAME.match(name)
    if not m:
        return None
    t = datetime.strptime(m[1], "%Y%m%d").replace(tzinfo=timezone.utc)
    return int(t.timestamp()) // 86_400


def ensure_days(conn: Connection, days: Iterable[int]) -> None:
    """Create the partitions of these days if missing (PostgreSQL; run in its own transaction)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    for day in sorted(set(days)):
        conn.execute(
            sa.text(
                f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF segments '
                f"FOR VALUES FROM ({day * DAY_US}) TO ({(day + 1) * DAY_US})"
            )
        )


def day_partitions(conn: Connection) -> list[DayPartition]:
    """Every day table, attached or detached by retention and not yet dropped, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, i.inhparent IS NOT NULL FROM pg_class c "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
            "WHERE c.relkind = 'r' AND c.relname LIKE 'segments_d%' AND c.relnamespace = current_schema()::regnamespace"
        )
    ).all()
    out = []
    for name, attached in rows:
        day = _day_from_name(name)
        if day is not None:
            out.append(DayPartition(name, day, bool(attached)))
    return sorted(out, key=lambda p: p.day)
