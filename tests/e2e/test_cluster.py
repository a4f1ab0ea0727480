"""Many nodes on one PostgreSQL catalog and one S3 store: leases, failover, fencing,
rebalancing; and the spool's disk budget with S3 down. Real PostgreSQL, SeaweedFS, RTSP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.catalog import Catalog, Segment, leases
from harness.servers import RtspServer, SeaweedS3
from harness.vigilproc import VigilProcess, wait_until

pytestmark = pytest.mark.e2e  # real vigil processes

TTL_S = 6.0
FRAME_US = 40_000


def cam(cid: str, url: str) -> dict[str, object]:
    return {"id": cid, "name": cid, "url": url, "tags": {"district": "harbour"}}


def holders(cat: Catalog) -> dict[str, str | None]:
    now = int(time.time() * 1e6)
    with cat.engine.connect() as c:
        return {r.camera_id: (r.node_id if r.expires_us > now else None) for r in c.execute(sa.select(leases))}


def per_node(h: dict[str, str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in h.values():
        if n:
            out[n] = out.get(n, 0) + 1
    return out


def recording_since(cat: Catalog, camera: str, since_us: int) -> list[Segment]:
    return [s for s in cat.segments_for(camera, stored_only=True) if s.start_us >= since_us]


def assert_no_overlap(cat: Catalog, cameras: list[str]) -> None:
    for c in cameras:
        segs = sorted(cat.segments_for(c), key=lambda s: s.start_us)
        for a, b in zip(segs, segs[1:]):
            assert a.end_us <= b.start_us + FRAME_US, f"{c}: {a.node_id} {a.start_us}-{a.end_us} overlaps {b.node_id} {b.start_us}"


def test_nodes_share_fail_over_fence_and_rebalance(tmp_path: Path, pg_url: str, s3: SeaweedS3) -> None:
    ids = [f"cam-{i}" for i in range(9)]
    rtsp = RtspServer({f"/{c}": "synthetic:?w=320&h=240&fps=25&gop=25" for c in ids})
    cams = [cam(c, rtsp.url(f"/{c}")) for c in ids]

    def node(name: str) -> VigilProcess:
        return VigilProcess(
            tmp_path / name,
            cams,
            s3=s3,
            catalog=pg_url,
            node_id=name,
            recording={"segment_seconds": 2},
            workers={"processes": 1, "backoff_initial_s": 0.25, "backoff_max_s": 1.0},
            cluster={"lease_ttl_s": TTL_S, "clock_margin_s": 1.0},
        )

    nodes = {n: node(n) for n in ("a", "b", "c", "d")}
    cat = Catalog(pg_url, create=False)
    try:
        for n in "abc":
            nodes[n].start()
        # 1. three nodes, nine cameras: three each, each camera recorded by one node
        wait_until(lambda: per_node(holders(cat)) == {"a": 3, "b": 3, "c": 3}, 40, what="3 cameras per node")
        settled = int(time.time() * 1e6)
        h1 = holders(cat)
        wait_until(lambda: all(recording_since(cat, c, settled) for c in ids), 30, what="all cameras recording")
        for c in ids:
            assert {s.node_id for s in recording_since(cat, c, settled)} == {h1[c]}

        # 2. kill -9 of node a: its cameras move to b and c within the lease TTL + 5 s
        lost = [c for c in ids if h1[c] == "a"]
        t_kill = time.time()
        nodes["a"].kill()
        wait_until(
            lambda: all(s.node_id in ("b", "c") for c in lost for s in recording_since(cat, c, int(t_kill * 1e6))[:1])
            and all(recording_since(cat, c, int(t_kill * 1e6)) for c in lost),
            TTL_S + 5 + 10,
            what="node a's cameras recording elsewhere",
        )
        for c in lost:
            first = recording_since(cat, c, int(t_kill * 1e6))[0]
            assert first.start_us / 1e6 - t_kill <= TTL_S + 5, (c, first.start_us / 1e6 - t_kill)
        wait_until(lambda: sorted(per_node(holders(cat)).values()) == [4, 5], 20, what="b and c sharing all 9")

        # 3. SIGSTOP node b past its lease; after SIGCONT it writes nothing for cameras it lost
        h2 = holders(cat)
        b_cams = [c for c in ids if h2[c] == "b"]
        pids = nodes["b"].pause()
        t_stop = time.time()
        wait_until(lambda: per_node(holders(cat)) == {"c": 9}, TTL_S + 15, what="c to take every camera")
        nodes["b"].resume(pids)
        t_cont = time.time()
        wait_until(lambda: per_node(holders(cat)).get("b", 0) >= 3, 30, what="b to rejoin with a fresh share")
        wait_until(lambda: not nodes["b"].catalog.pending_segments(), 20, what="b's uploads")
        for c in b_cams:
            late = [s for s in cat.segments_for(c) if s.node_id == "b" and s.end_us / 1e6 > t_stop + 0.5 and s.start_us / 1e6 < t_cont]
            assert not late, f"b wrote {c} past the moment it was stopped: {late}"
        assert_no_overlap(cat, ids)

        # 4. a fourth node joins: it takes its share within a minute; others reconnect at most once
        runs_before = {c: {s.run_id for s in cat.segments_for(c)} for c in ids}
        t_join = time.time()
        nodes["d"].start()
        wait_until(lambda: per_node(holders(cat)).get("d", 0) == 3, 60, what="d to take its share")
        assert time.time() - t_join <= 60
        d_cams = [c for c, n in holders(cat).items() if n == "d"]
        wait_until(lambda: all(recording_since(cat, c, int(t_join * 1e6)) for c in d_cams), 30, what="d recording")
        settle = time.time()
        wait_until(lambda: time.time() - settle >= 6, 10, 0.5, "a few segments after the join")
        for c in ids:
            new_runs = {s.run_id for s in cat.segments_for(c)} - runs_before[c]
            moved = c in d_cams
            assert len(new_runs) <= (2 if moved else 1), (c, moved, len(new_runs))

        # node a comes back: what its killed workers had spooled is recovered and uploaded, so the
        # catalog's failover gap is the lease expiry and the reconnect, nothing more
        nodes["a"].start()
        wait_until(lambda: not list((tmp_path / "a" / "spool").rglob("*.mp4")), 30, what="a's spool to drain")
        for c in lost:
            segs = sorted(cat.segments_for(c), key=lambda s: s.start_us)
            before = [s for s in segs if s.start_us / 1e6 < t_kill and s.node_id == "a"]
            after = [s for s in segs if s.start_us / 1e6 >= t_kill]
            gap_s = (after[0].start_us - before[-1].end_us) / 1e6
            assert 0 <= gap_s <= TTL_S + 5, (c, gap_s)
        for n in ("a", "b", "c", "d"):
            nodes[n].terminate()
        assert_no_overlap(cat, ids)
        assert holders(cat) == {c: None for c in ids}, "clean shutdown releases every lease"
    finally:
        for v in nodes.values():
            if v.proc is not None and v.proc.poll() is None:
                v.proc.kill()
            v.stop()
        cat.close()
        rtsp.stop()


def test_spool_budget_drops_oldest_with_an_event_while_s3_is_down(tmp_path: Path) -> None:
    s3 = SeaweedS3(tmp_path / "s3")
    rtsp = RtspServer({"/a": "synthetic:?w=320&h=240&fps=25&gop=25"})
    v = VigilProcess(
        tmp_path / "v", [cam("a", rtsp.url("/a"))], s3=s3, recording={"segment_seconds": 2}, spool={"max_bytes": "250KB"}
    )
    try:
        with v:
            wait_until(lambda: v.catalog.segments_for("a", stored_only=True), 30, what="a first upload")
            s3.stop()
            wait_until(
                lambda: [e for e in v.catalog.events_since(0, camera_id="a", limit=1000) if e.kind == "spool_drop"],
                60,
                what="a spool_drop event",
            )
            spooled_before = {s.start_us for s in v.catalog.pending_segments()}
            s3.start()
            wait_until(lambda: not v.catalog.pending_segments(), 60, what="the spool to drain")
            v.terminate()
            drops = [e for e in v.catalog.events_since(0, camera_id="a", limit=1000) if e.kind == "spool_drop"]
            dropped_starts = {e.figures["start_us"] for e in drops}
            segs = v.catalog.segments_for("a")
            stored_starts = {s.start_us for s in segs}
            assert {s.state for s in segs} == {"stored"}
            assert not dropped_starts & stored_starts, "what was dropped is gone, with its event"
            assert spooled_before <= stored_starts | dropped_starts, "nothing else is missing"
            dropped_us = sum(e.figures["end_us"] - e.figures["start_us"] for e in drops)
            covered_us = sum(s.duration_us for s in segs)
            span_us = segs[-1].end_us - segs[0].start_us
            assert abs(span_us - covered_us - dropped_us) <= 2 * FRAME_US, "the only loss is what the events name"
    finally:
        rtsp.stop()
        s3.stop()
