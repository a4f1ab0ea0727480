"""Any node serves any camera live: a viewer on node B watches a camera that node A records, from
A's one camera connection (B relays A's live channel), and a low-delay wish on B reaches A's reader.
Real PostgreSQL, RTSP and WebSockets."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
from pathlib import Path

import av
import httpx
import pytest
import websockets

from storage.api_keys import create_key
from harness.clockcode import latency_ms, read_clock_ms
from tests.e2e.test_cluster import holders
from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until

pytestmark = pytest.mark.e2e  # real vigil processes on PostgreSQL

WATCH_S = 6.0


async def watch(url: str, seconds: float) -> tuple[list[str], bytes, list[float]]:
    """Text messages, the fMP4 stream, and each frame's arrival time (ms) at this client."""
    texts: list[str] = []
    stream = bytearray()
    arrivals: list[float] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "delay", "low": True}))  # a single view's wish
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            msg = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(msg, str):
                texts.append(msg)
                continue
            stream += msg[17:]
            if msg[0] != 1:
                arrivals.append(time.time() * 1000)
    return texts, bytes(stream), arrivals


def test_viewer_on_node_b_watches_a_camera_recorded_by_node_a(tmp_path: Path, pg_url: str) -> None:
    with RtspServer({"/clk": "clock:?w=640&h=360&fps=25&gop=25"}) as rtsp:
        cams = [{"id": "clk", "name": "Clock", "url": rtsp.url("/clk")}]

        def node(name: str) -> VigilProcess:
            return VigilProcess(tmp_path / name, cams, catalog=pg_url, node_id=name,
                                workers={"processes": 1, "backoff_initial_s": 0.3, "backoff_max_s": 1.0},
                                cluster={"lease_ttl_s": 6.0, "clock_margin_s": 1.0})  # fmt: skip

        with node("a") as a:
            wait_until(lambda: holders(a.catalog).get("clk") == "a", 30, what="node a to hold the camera")
            wait_until(lambda: (st := a.catalog.get_status("clk")) is not None and st.state == "online", 30,
                       what="the camera online")  # fmt: skip
            with node("b") as b:
                key = create_key(b.catalog, "viewer", "wall-b")
                r = httpx.get(f"{b.url}/api/cameras/clk/live-ws-url", headers={"Authorization": f"Bearer {key}"})
                url = f"ws://127.0.0.1:{b.port}{r.json()['url']}"
                texts, stream, arrivals = asyncio.run(watch(url, WATCH_S))
                assert holders(b.catalog).get("clk") == "a", "node a still records the camera"
                b_log = b.log_text()
        a_log = a.log_text()
    assert any('"state": "live"' in t for t in texts), texts
    delays = []
    with av.open(io.BytesIO(stream)) as c:
        for frame, at in zip(c.decode(video=0), arrivals):
            ms = read_clock_ms(frame.to_ndarray(format="gray"))
            assert ms is not None, "every frame relayed intact"
            delays.append(latency_ms(ms, int(at)))
    print(f"\nnode b relays node a: {len(delays)} frames in {WATCH_S:.0f} s, camera → client on b "
          f"p50 {statistics.median(delays):.0f} ms, max {max(delays):.0f} ms")  # fmt: skip
    assert len(delays) >= WATCH_S * 25 * 0.5
    assert statistics.median(delays) < 1000
    assert "clk: run" not in b_log, "node b opened no connection to the camera"
    assert "clk: live subscriber joined" in a_log, "node a's worker fed the relay"
    assert "clk: live read frame by frame" in a_log, "the viewer's low-delay wish went through b to a's reader"
