"""Benchmark 4 — `GET /api/status` at city scale: 4,470 cameras in a real SQLite catalog (and a day
of 60 s segments for 50 of them), the API served by uvicorn as `vigil run` serves it (one process,
no access log), loaded by wrk (Debian) with 50 connections and a Lua script setting the
Authorization header.

While wrk runs, a writer process updates 100 feed statuses every 100 ms (1,000 rows/s, as worker
processes refreshing fps/bitrate would), so the shared document really is rebuilt every second. Rows: the full document; conditional polls (`If-None-Match` with the last
ETag: 304 unless the board changed); a filtered document (`state=offline`). wrk runs on the same
2 cores as the server (2 threads), so the numbers include that competition.

    /tmp/venv/bin/python bench/status_latency.py            # 3 × 30 s
    /tmp/venv/bin/python bench/status_latency.py --quick    # 3 × 8 s
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, TreeMeter, machine, md_table, save_result, wait_quiet  # noqa: E402

N_CAMERAS = 4470
N_RECORDED = 50
SEGMENTS_PER_DAY = 1440  # 60 s segments
T0 = 1714557600 * 1_000_000  # 2024-05-01T10:00:00Z

LUA_COMMON = """
local key = "{key}"
local hdr = {{ ["Authorization"] = "Bearer " .. key }}
done = function(summary, latency, requests)
  io.write(string.format('RESULT {{"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"non2xx":%d}}\\n',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
"""
LUA_PLAIN = LUA_COMMON + """
request = function() return wrk.format("GET", "{path}", hdr) end
"""
# wrk counts only status > 399 in errors.status, so 304 is a success.
LUA_PACED = LUA_PLAIN + """
delay = function() return {period_ms} end
"""
LUA_CONDITIONAL = LUA_COMMON + """
local etag = nil
request = function()
  local h = {{ ["Authorization"] = "Bearer " .. key }}
  if etag then h["If-None-Match"] = etag end
  return wrk.format("GET", "{path}", h)
end
response = function(status, headers, body)
  local e = headers["ETag"] or headers["etag"]
  if e then etag = e end
end
"""


def build_catalog(workdir: Path) -> tuple[object, str]:
    """The API app over a catalog with 4,470 cameras (+ statuses) and a day of segments for 50."""
    import sqlalchemy as sa

    from storage.catalog import cameras, feed_status, segments
    from tests.api.conftest import camera_url, make_env

    env = make_env(workdir)
    with env.catalog.engine.begin() as c:
        c.execute(sa.insert(cameras), [
            {"id": f"cam{i:04d}", "name": f"Camera {i}", "url": camera_url(path=f"/cam{i:04d}"), "transport": "tcp",
             "tags": {"district": f"d{i % 12}", "zone": f"z{i % 40}"}, "enabled": True, "health_url": None,
             "options": {}, "updated_us": T0}
            for i in range(N_CAMERAS)])
        c.execute(sa.insert(feed_status), [
            {"camera_id": f"cam{i:04d}", "state": "online" if i % 20 else "offline", "since_us": T0, "updated_us": T0,
             "reason": "" if i % 20 else "no packets for 5 s", "fps": 25.0, "bitrate_kbps": 2000.0,
             "last_packet_us": T0, "reconnects": 0,
             "figures": {"diff": 0.52, "luma": 101.3, "sharpness": 0.41, "p_ratio": 0.06}, "run_id": "r" * 32,
             "node_id": "node-1"}
            for i in range(N_CAMERAS)])
        seg_us = 60_000_000
        day0 = T0 - 86_400_000_000
        frag = [[800 + 500_000 * k, 500_000, 2_000_000 * k, 2_000_000] for k in range(30)]
        for i in range(N_RECORDED):
            cid = f"cam{i:04d}"
            c.execute(sa.insert(segments), [
                {"camera_id": cid, "run_id": f"{i:04d}" + "a" * 28, "seq": s, "start_us": day0 + s * seg_us,
                 "end_us": day0 + (s + 1) * seg_us, "media_start_us": s * seg_us, "bytes": 15_000_800,
                 "header_bytes": 800, "object_key": f"{cid}/seg/{day0 + s * seg_us}.mp4", "video_codec": "h264",
                 "audio_codec": None, "width": 1280, "height": 720, "frames": 1500, "fragments": frag,
                 "recovered": False, "drift_us": 0, "lease_epoch": 1, "node_id": "node-1", "state": "stored",
                 "stored_us": day0 + (s + 1) * seg_us + 1_500_000}
                for s in range(SEGMENTS_PER_DAY)])
    return env, env.keys["viewer"]


def writer(db_url: str, writes_per_s: int, stop: "mp.synchronize.Event") -> None:
    """Feed-status updates from another process, as vigil's worker processes write them."""
    import sqlalchemy as sa

    from storage.catalog import Catalog, feed_status

    catalog = Catalog(db_url, create=False)
    k = 0
    batch = max(1, writes_per_s // 10)
    while not stop.is_set():
        now = int(time.time() * 1e6)
        with catalog.engine.begin() as c:
            for i in range(batch):
                c.execute(sa.update(feed_status).where(feed_status.c.camera_id == f"cam{(k + i) % N_CAMERAS:04d}")
                          .values(fps=24.0 + (k % 3), updated_us=now))
        k += batch
        stop.wait(0.1)


def server(workdir: str, q: "mp.Queue[tuple[int, str, str]]") -> None:
    import uvicorn

    from tests.servers import free_port

    env, key = build_catalog(Path(workdir))
    port = free_port()
    # as vigil/service.py serves it: one uvicorn process, no access log
    config = uvicorn.Config(env.app, host="127.0.0.1", port=port, log_config=None, access_log=False,  # type: ignore[attr-defined]
                            log_level="warning")
    srv = uvicorn.Server(config)
    threading.Thread(target=lambda: (time.sleep(0.5), q.put((port, key, env.catalog.url))), daemon=True).start()  # type: ignore[attr-defined]
    srv.run()


def run_wrk(url: str, lua: str, seconds: float, conns: int, threads: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^RESULT (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--writes-per-s", type=int, default=1000, help="feed status updates per second during the run")
    ap.add_argument("--quick", action="store_true", help="8 s per row")
    ap.add_argument("--max-load", type=float, default=0.6)
    ap.add_argument("--profile", action="store_true", help="py-spy the server during the first row")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds = 8.0

    print(f"# GET /api/status with {N_CAMERAS} cameras — {machine()}", flush=True)
    work = tempfile.mkdtemp(prefix="vigil-bench-status-")
    ctx = mp.get_context("spawn")
    q: mp.Queue[tuple[int, str, str]] = ctx.Queue()
    t = time.perf_counter()
    proc = ctx.Process(target=server, args=(work, q), daemon=True)
    proc.start()
    port, key, db_url = q.get(timeout=300)
    stop_writer = ctx.Event()
    wproc = ctx.Process(target=writer, args=(db_url, args.writes_per_s, stop_writer), daemon=True)
    if args.writes_per_s:
        wproc.start()
    base = f"http://127.0.0.1:{port}"
    print(f"catalog built and API up in {time.perf_counter() - t:.0f} s "
          f"({N_CAMERAS} cameras, {N_RECORDED * SEGMENTS_PER_DAY:,} segments)", flush=True)
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.get("/api/status")
        r.raise_for_status()
        doc_bytes = len(r.content)
        doc_off = len(c.get("/api/status", params={"state": "offline"}).content)
        print(f"document: {doc_bytes / 1e6:.2f} MB, {r.json()['cameras_total']} cameras; offline only: {doc_off / 1e3:.0f} kB", flush=True)
        for _ in range(20):  # warm the per-filter bodies
            c.get("/api/status")

    rows = []
    results = {}
    cases = [
        ("full document, as fast as they can", LUA_PLAIN.format(key=key, path="/api/status")),
        ("If-None-Match (304 unless changed), as fast as they can", LUA_CONDITIONAL.format(key=key, path="/api/status")),
        ("filtered state=offline, as fast as they can", LUA_PLAIN.format(key=key, path="/api/status?state=offline")),
        ("full document, each client once a second", LUA_PACED.format(key=key, path="/api/status", period_ms=1000)),
    ]
    spy = None
    for label, lua in cases:
        load = wait_quiet(args.max_load, what=label)
        meter = TreeMeter(lambda: [proc.pid] if proc.pid else [])
        meter.start()
        if args.profile and spy is None:
            prof = RESULTS / "profiles" / "status"
            prof.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid),
                                    "--duration", str(int(args.seconds) - 1), "--rate", "97", "--nonblocking", "--threads",
                                    "--format", "raw", "--output", str(prof / "full-document.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = run_wrk(base + "/api/status", lua, args.seconds, args.connections, args.threads)
        meter.stop()
        if spy is not None and spy.poll() is None:
            spy.wait(30)
        results[label] = {**r, "server_core_pct": meter.core_pct(), "load": load}
        ok = "yes" if r["p99_us"] <= 20_000 else "no"
        rows.append([label, f"{r['p50_us'] / 1e3:.1f}", f"{r['p90_us'] / 1e3:.1f}", f"{r['p99_us'] / 1e3:.1f}",
                     f"{r['max_us'] / 1e3:.1f}", f"{r['rps']:.0f}", f"{r['bytes'] / r['duration_us']:.1f}",
                     str(r["errors"] + r["non2xx"]), f"{meter.core_pct():.0f}", ok, f"{load:.2f}"])
        print(f"  {label}: p50 {r['p50_us'] / 1e3:.1f} ms p99 {r['p99_us'] / 1e3:.1f} ms, {r['rps']:.0f} req/s", flush=True)
    stop_writer.set()
    if args.writes_per_s:
        wproc.join(10)
    proc.terminate()
    proc.join(10)
    print()
    print(md_table(["request", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "MB/s", "errors",
                    "server CPU % of a core", "p99 ≤ 20 ms", "load at start"], rows))
    print(f"\n{args.connections} connections, wrk {args.threads} threads, {args.seconds:.0f} s per row; "
          f"{args.writes_per_s} status updates/s from another process in the background.")
    if args.profile:
        from bench.common import top_frames

        print("\npy-spy, server process, full document (self %, inclusive %):")
        for f, sp, inc in top_frames([RESULTS / "profiles" / "status" / "full-document.txt"], 20):
            print(f"  {sp:5.1f} {inc:5.1f}  {f}")
    save_result("status_latency" + ("-quick" if args.quick else ""),
                {"args": vars(args), "document_bytes": doc_bytes, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
