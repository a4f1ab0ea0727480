"""The catalog at city scale on the local PostgreSQL: retention, playlists, /metrics totals, the
availability report and the size of a segment row, through vigil's own migrations and code.

What it builds (a fresh database, schema by `Catalog(url)`, rows loaded with COPY):
- a city-day: `--cameras` cameras × 1,440 segments of 60 s (30 GOPs of 2 s each) on day X;
- `--sample` of those cameras with 29 more days (X+1 … X+29): 30 days of history;
- a year of health events for every camera (`--events-per-day` state events a day, days X−335 … X+29).

What it runs, each through vigil's code (no HTTP): a retention pass that retires day X with 30 days
of history, then again with only that day loaded (their ratio: does a pass grow with history?);
the newest hour's VOD playlist of a 30-day camera (Catalog.segments_between + playback.hls), warm
and cold (a new connection, a camera not read before — the OS page cache cannot be dropped on a
shared machine); `Catalog.segment_totals()` (what /metrics asks); the city's one-day availability
report with a year of events (time, and peak Python memory under tracemalloc in a second run); the
bytes per segment row (table + indexes + TOAST of day X / its rows).

Figures depending on the number of cameras are extrapolated linearly to 4,470. The script runs on
today's schema and on the one before 0004 (JSON fragments, stored object key) alike, so the same
script measures main: `cd <a checkout of main> && python <this file> --quick`.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ROOT = Path.cwd() if (Path.cwd() / "storage").is_dir() else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playback.hls import MediaSource, render_vod, vod_entries  # noqa: E402
from reports.availability import availability  # noqa: E402
from storage.catalog import Catalog  # noqa: E402
from storage.keys import segment_key  # noqa: E402
from storage.retention import apply_retention  # noqa: E402

CITY = 4_470
S = 1_000_000
DAY = 86_400 * S
SEG = 60 * S
GOP = 2 * S
X = 20_400  # day X: 2025-11-08 (days since the epoch)
ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
STATES = ("online", "frozen", "online", "offline", "online", "black")


@dataclass
class Figures:
    retention_city_day_s: float
    retention_30d_over_1d: float
    playlist_hour_warm_ms: float
    playlist_hour_cold_ms: float
    metrics_ms: float
    report_city_day_s: float
    report_mb: float
    bytes_per_segment_row: float


class FixedClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: object = None) -> bool:
        return False


class NullStore:
    """Counts deletes: the figure is the catalog's work, not the object store's."""

    def __init__(self) -> None:
        self.deleted = 0

    def delete(self, key: str) -> None:
        self.deleted += 1

    def delete_many(self, keys: list[str]) -> None:
        self.deleted += len(keys)


def cam_id(i: int) -> str:
    return f"cam-{i:05d}"


class Loader:
    """COPY rows in the shape the database's schema has (before or after the catalog-scale change)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        cols = {c["name"] for c in sa.inspect(engine).get_columns("segments")}
        self.old = "object_key" in cols
        rnd = random.Random(7)
        self.blobs: list[tuple[str, int]] = []
        for _ in range(64):
            sizes = [rnd.randint(400_000, 600_000) for _ in range(30)]
            off = 812
            frags = []
            for i, size in enumerate(sizes):
                frags.append((off, size, i * GOP, GOP))
                off += size
            if self.old:
                text = json.dumps([list(f) for f in frags]).replace("\\", "\\\\")
            else:
                from storage.catalog import Fragment
                from storage.catalog.fragment_index import pack_fragments

                text = "\\\\x" + pack_fragments([Fragment(*f) for f in frags]).hex()
            self.blobs.append((text, off))

    def _copy(self, table: str, cols: list[str], lines: Iterator[str]) -> None:
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            buf = io.StringIO()
            n = 0
            for line in lines:
                buf.write(line)
                n += 1
                if n % 200_000 == 0:
                    buf.seek(0)
                    cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)
                    buf = io.StringIO()
            buf.seek(0)
            cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)
            raw.commit()
        finally:
            raw.close()

    def segments(self, cams: list[str], days: range) -> int:
        if not self.old:
            from storage.catalog.partitions import ensure_days

            with self.engine.begin() as c:
                ensure_days(c, days)
        cols = ["camera_id", "run_id", "seq", "start_us", "end_us", "media_start_us", "bytes", "header_bytes",
                "video_codec", "width", "height", "frames", "fragments", "recovered", "drift_us", "lease_epoch",
                "node_id", "state", "stored_us"] + (["object_key"] if self.old else [])
        count = [0]

        def lines() -> Iterator[str]:
            for ci, cam in enumerate(cams):
                for d in days:
                    run = uuid.UUID(int=(ci << 32) + d).hex
                    for k in range(1440):
                        start = d * DAY + k * SEG
                        blob, size = self.blobs[(ci + k) % 64]
                        extra = "\t" + segment_key(cam, start) if self.old else ""
                        count[0] += 1
                        yield (f"{cam}\t{run}\t{k}\t{start}\t{start + SEG}\t{k * SEG}\t{size}\t812\th264\t1280\t720\t1500\t"
                               f"{blob}\tf\t{k * 37}\t{3 + ci % 5}\tnode-{ci % 30:02d}\tstored\t{start + 9 * S}{extra}\n")

        self._copy("segments", cols, lines())
        with self.engine.begin() as c:
            if not self.old:  # what the uploader's mark_stored keeps, for rows it never saw
                c.execute(sa.text("DELETE FROM segment_totals"))
                c.execute(sa.text("INSERT INTO segment_totals SELECT camera_id, count(*), sum(bytes) FROM segments "
                                  "WHERE state = 'stored' GROUP BY camera_id"))
        return count[0]

    def events(self, cams: list[str], days: range, per_day: int) -> int:
        count = [0]

        def lines() -> Iterator[str]:
            step = DAY // per_day
            for d in days:
                for ci, cam in enumerate(cams):
                    prev = "online"
                    for j in range(per_day):
                        to = STATES[(j + 1) % len(STATES)]
                        count[0] += 1
                        at = d * DAY + j * step + (ci * 997) % step
                        yield f"{cam}\t{at}\tstate\t{prev}\t{to}\t\t{{}}\n"
                        prev = to

        self._copy("events", ["camera_id", "at_us", "kind", "from_state", "to_state", "reason", "figures"], lines())
        return count[0]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def playlist(cat: Catalog, cam: str, end_us: int) -> str:
    segs = cat.segments_between(cam, end_us - 3600 * S, end_us, stored_only=True)
    return render_vod(vod_entries([MediaSource(s, f"/m/{s.object_key}") for s in segs], end_us - 3600 * S, end_us))


def vacuum(url: str) -> None:
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text("VACUUM ANALYZE"))
    eng.dispose()


def row_bytes(engine: sa.Engine, old: bool) -> tuple[float, int]:
    with engine.connect() as c:
        if old:
            size = c.execute(sa.text("SELECT pg_total_relation_size('segments')")).scalar_one()
            rows = c.execute(sa.text("SELECT count(*) FROM segments")).scalar_one()
        else:
            from storage.catalog.partitions import partition_name

            name = partition_name(X)
            size = c.execute(sa.text(f"SELECT pg_total_relation_size('{name}')")).scalar_one()
            rows = c.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
    return size / max(rows, 1), int(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 cameras, 3 sampled for 30 days (under 5 minutes)")
    ap.add_argument("--cameras", type=int, default=None, help=f"cameras of the city-day (default {CITY})")
    ap.add_argument("--sample", type=int, default=None, help="cameras with 30 days (default 10)")
    ap.add_argument("--events-per-day", type=int, default=12)
    ap.add_argument("--event-days", type=int, default=365)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--skip-report", action="store_true", help="no availability report (slow before catalog-scale)")
    a = ap.parse_args()
    n = a.cameras or (300 if a.quick else CITY)
    ns = a.sample or (3 if a.quick else 10)
    scale = CITY / n
    t_start = time.perf_counter()

    name = f"vigil_bench_catalog_{os.getpid()}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        cat = Catalog(url)  # vigil's migrations
        load = Loader(cat.engine)
        print(f"schema: {'before catalog-scale (JSON fragments, stored key)' if load.old else 'catalog-scale'}; "
              f"{n} cameras (×{scale:.1f} to the city), {ns} with 30 days", flush=True)
        cams = [cam_id(i) for i in range(n)]
        sample = cams[:ns]
        with cat.engine.begin() as c:
            c.execute(sa.text("INSERT INTO cameras (id, name, url, transport, tags, enabled, options, updated_us) "
                              "VALUES (:id, :id, 'rtsp://h/x', 'tcp', :tags, true, '{}', 0)"),
                      [{"id": cid, "tags": json.dumps({"district": f"d{i % 12}"})} for i, cid in enumerate(cams)])
            c.execute(sa.text("INSERT INTO feed_status (camera_id, state, since_us, reason, reconnects, figures, updated_us) "
                              "VALUES (:id, 'online', :t, '', 0, '{}', :t)"),
                      [{"id": cid, "t": (X + 29) * DAY} for cid in cams])
        t = time.perf_counter()
        rows = load.segments(cams, range(X, X + 1))
        rows += load.segments(sample, range(X + 1, X + 30))
        evs = load.events(cams, range(X + 30 - a.event_days, X + 30), a.events_per_day)
        vacuum(url)
        print(f"loaded {rows:,} segment rows and {evs:,} events in {time.perf_counter() - t:.0f} s", flush=True)

        per_row, day_rows = row_bytes(cat.engine, load.old)
        print(f"segment row: {per_row:.0f} B (table + indexes + TOAST of day X, {day_rows:,} rows) → "
              f"{per_row * 1440 * CITY / 1e9:.1f} GB a city-day, {per_row * 1440 * CITY * 30 / 1e9:.0f} GB for 30 days")

        # /metrics' totals
        cat.segment_totals()
        m = statistics.median(timed(cat.segment_totals) for _ in range(5)) * 1000
        print(f"/metrics segment totals: {m:.1f} ms at {n} cameras → {m * scale:.1f} ms at {CITY} "
              f"(independent of history: {'no, a GROUP BY over every row' if load.old else 'yes, one row a camera'})")

        # the newest hour's playlist of a 30-day camera; cold: new connection, camera not read before
        end = (X + 30) * DAY
        cold_cat = Catalog(url, create=False)
        cold = timed(lambda: playlist(cold_cat, sample[-1], end)) * 1000
        cold_cat.close()
        playlist(cat, sample[0], end)
        warm = statistics.median(timed(lambda: playlist(cat, sample[0], end)) for _ in range(7)) * 1000
        print(f"newest-hour playlist at 30 days: warm {warm:.1f} ms, cold {cold:.1f} ms (new connection, unread camera)")

        # the city's one-day report with a year of events
        day = ((X + 29) * DAY, (X + 30) * DAY)
        rep = peak = float("nan")
        if not a.skip_report:
            rep = timed(lambda: availability(cat, *day))
            tracemalloc.start()
            availability(cat, *day)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
        print(f"one-day report, {a.event_days} days of events: {rep:.2f} s, peak {peak:.0f} MB at {n} cameras → "
              f"{rep * scale:.2f} s, {peak * scale:.0f} MB at {CITY}")

        # retention: retire day X with 30 days of history, then with that day alone
        clock = FixedClock(((X + 31) * DAY + 3600 * S) / S)
        store = NullStore()
        t30 = timed(lambda: apply_retention(cat, store, default_days=30, clock=clock))
        gone30 = store.deleted
        with cat.engine.connect() as c:
            left = c.execute(sa.text(f"SELECT count(*) FROM segments WHERE start_us < {(X + 1) * DAY}")).scalar_one()
        # (before catalog-scale, age was exact: the sample's first hour of day X+1 went too)
        assert left == 0 and gone30 >= n * 1440, (left, gone30)
        with cat.engine.begin() as c:  # back to one day: the sample's later days go, day X comes back
            if load.old:
                c.execute(sa.text(f"DELETE FROM segments WHERE start_us >= {(X + 1) * DAY}"))
            else:
                from storage.catalog.partitions import partition_name

                for d in range(X + 1, X + 30):
                    c.execute(sa.text(f'DROP TABLE IF EXISTS "{partition_name(d)}"'))
        load.segments(cams, range(X, X + 1))
        vacuum(url)
        store = NullStore()
        t1 = timed(lambda: apply_retention(cat, store, default_days=30, clock=clock))
        assert store.deleted == n * 1440
        print(f"retention of day X ({n * 1440:,} rows): {t30:.2f} s with 30 days of history, {t1:.2f} s with 1 "
              f"(×{t30 / t1:.2f}) → {t1 * scale:.1f} s a city-day of {1440 * CITY:,} rows (catalog work; object "
              f"deletes not counted)")
        cat.close()

        fig = Figures(
            retention_city_day_s=round(t1 * scale, 2),
            retention_30d_over_1d=round(t30 / t1, 2),
            playlist_hour_warm_ms=round(warm, 2),
            playlist_hour_cold_ms=round(cold, 2),
            metrics_ms=round(m * scale, 2),
            report_city_day_s=round(rep * scale, 2),
            report_mb=round(peak * scale, 1),
            bytes_per_segment_row=round(per_row, 1),
        )
        print(f"total {time.perf_counter() - t_start:.0f} s", flush=True)
        print(json.dumps(fig.__dict__))
    finally:
        if not a.keep:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
