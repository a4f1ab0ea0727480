"""Live latency and fan-out: glass-to-glass delay in Chromium for each live transport, and the CPU
a viewer costs the API and the worker.

What it runs: a clock camera (camserver `clock:`: every frame carries the wall clock in a row of
cells), one `vigil run` recording it, Debian's Chromium through Playwright.

1. Glass-to-glass, per transport, one after the other in the same run: the WebSocket/MSE live view
   and the old live HLS playlist (`?live=hls`). The page reads the cells of every frame it presents
   (harness/clock_reader.js): delay = presentation time − the time drawn in the frame.
2. Fan-out: N WebSocket viewers (asyncio clients in this process) of the camera; CPU of the API
   process and of the worker per viewer-stream, over a window, against the same window with none;
   the delay each client sees (its receive time − the worker's read time, one machine's clock).

Usage: .venv/bin/python bench/live_latency.py [--seconds 60] [--viewers 0,1,10,1L,50,100] [--size 1280x720]
       [--skip-browser] [--client-procs 4] [--watched-pause 0.2] [--no-low-delay] [--out live_latency.json]
A viewer count is of wall viewers (content with the recorder's bursts, what a client asks by
default); with an L (`1L`) they ask for low delay, as the page's single view does (each frame as
it arrives). --watched-pause sets workers.watched_read_coalesce_s (the reader's pause for wall
viewers; default: the unwatched pause); --no-low-delay sets workers.low_delay_live false (the
browser's single view gets bursts too). With the counts interleaved (0,10,1L,0,10,1L,…) the summary
gives, per count, the worker's CPU (median, min, max) and each round's ratio to the 0-viewer window
before it.
Writes bench/results/live_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage.api_keys import create_key  # noqa: E402
from harness.servers import RtspServer  # noqa: E402
from harness.vigilproc import VigilProcess, wait_until  # noqa: E402

READER = (ROOT / "harness" / "clock_reader.js").read_text()
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def browser_run(v: VigilProcess, key: str, mode: str, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = b.new_page(viewport={"width": 1280, "height": 800})
        page.goto(v.url + ("/?live=hls" if mode == "hls" else "/"))
        page.fill("#signin-key", key)
        page.click("#signin-button")
        page.wait_for_selector("#wall-grid .tile[data-id='clk']", timeout=30_000)
        if mode == "wall":  # a tile of the live wall (2×2): content with the recorder's bursts
            page.click("#tab-livewall")
            page.click("#lw-layout-2")
            sel = "#lw-grid .lw-tile[data-id='clk'] video"
        else:  # the single view: asks for low delay
            page.click("#wall-grid .tile[data-id='clk']")
            page.wait_for_selector("#live[open]")
            sel = "#live-video"
        page.wait_for_function(f"() => document.querySelector({sel!r})?.readyState >= 2", timeout=60_000)
        page.evaluate(READER)
        if mode == "wall":  # (evaluated as is, the reader watches #live-video)
            page.evaluate(f"() => {{ window.__clock = window.__clockInstall(document.querySelector({sel!r})); }}")
        page.wait_for_function("() => window.__clock.samples.length > 25", timeout=60_000)
        page.evaluate("() => { const c = window.__clock; c.samples = []; c.gaps = []; c.maxGap = 0; c.frames = 0; c.unread = 0; }")
        time.sleep(seconds)
        c = page.evaluate("() => window.__clock")
        q = page.evaluate(f"() => {{ const q = document.querySelector({sel!r}).getVideoPlaybackQuality(); return [q.droppedVideoFrames, q.totalVideoFrames]; }}")
        player = page.evaluate("""(sel) => { const p = document.querySelector(sel).livePlayer;
            const j = p && p.jitter;  // (a player without a jitter buffer: a checkout before it)
            return p ? {...p.stats, ...(j ? {late95_s: j.late95, need_s: j.need, target_s: j.target} : {})} : null; }""", sel)
        b.close()
    d = [x for _, x in c["samples"]]
    t0 = c["samples"][0][0] if c["samples"] else 0.0
    minutes: dict[int, list[float]] = {}
    for at, x in c["samples"]:
        minutes.setdefault(int((at - t0) // 60_000), []).append(x)
    per_minute = [round(statistics.median(v)) for _, v in sorted(minutes.items())]  # does the delay drift?
    return {
        "p50_ms_per_minute": per_minute,
        "mode": mode, "seconds": seconds, "frames": c["frames"], "fps": c["frames"] / seconds, "unread": c["unread"],
        "p50_ms": statistics.median(d) if d else None, "p95_ms": pct(d, 95), "max_ms": max(d) if d else None,
        "longest_gap_ms": c["maxGap"], "gaps_over_1s": len(c["gaps"]), "dropped_total": q, "player": player,
        "loadavg_1m_end": psutil.getloadavg()[0],
    }  # fmt: skip


async def viewers(url: str, n: int, seconds: float, low_delay: bool = False) -> list[float]:
    """n WebSocket viewers for `seconds` (asking for low delay, or not); each frame's delay
    (receive − worker read), ms."""
    import struct

    import websockets

    delays: list[float] = []
    stop = time.monotonic() + seconds

    async def one() -> None:
        async with websockets.connect(url, max_size=None, compression=None) as ws:
            if low_delay:
                await ws.send(json.dumps({"type": "delay", "low": True}))
            while time.monotonic() < stop:
                try:
                    msg = await asyncio.wait_for(ws.recv(), max(0.1, stop - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if isinstance(msg, bytes) and msg[0] in (2, 3):
                    delays.append(time.time() * 1000 - struct.unpack_from(">d", msg, 1)[0])

    await asyncio.gather(*(one() for _ in range(n)))
    return delays


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def cpu_ns_of(pids: list[int]) -> float:
    """CPU seconds of the processes' live threads from /proc/<pid>/task/*/schedstat (nanoseconds):
    psutil's times come in 10 ms ticks, ±0.07 % of a core over 15 s, as large as the effect sought
    here. A thread that ends between two readings takes its time with it (the worker's are long-lived)."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total / 1e9


def _viewer_proc(args: tuple[str, int, float, bool]) -> list[float]:
    return asyncio.run(viewers(*args))


def run_viewers(url: str, n: int, seconds: float, procs: int, low_delay: bool = False) -> list[float]:
    """n viewers spread over `procs` client processes (one Python process saturates near 50)."""
    if procs <= 1 or n < procs:
        return asyncio.run(viewers(url, n, seconds, low_delay))
    import multiprocessing

    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_viewer_proc, [(url, k, seconds, low_delay) for k in shares])
    return [x for part in parts for x in part]


def fanout(v: VigilProcess, key: str, counts: list[str], seconds: float, procs: int = 1) -> list[dict[str, Any]]:
    r = httpx.get(f"{v.url}/api/cameras/clk/live-ws-url", headers={"Authorization": f"Bearer {key}"})
    url = f"ws://127.0.0.1:{v.port}{r.json()['url']}"
    assert v.proc is not None
    api_pid = v.api_pid()  # the API runs in its own process (docs/design/security.md)
    assert api_pid is not None
    api, workers = [api_pid], v.worker_pids()
    out = []
    for label in counts:
        n, low = int(label.rstrip("L")), label.endswith("L")
        time.sleep(12 if n == 0 else 2)  # with none: the feed's linger ends, the worker is idle
        a0, w0, wn0, t0 = cpu_of(api), cpu_of(workers), cpu_ns_of(workers), time.monotonic()
        d = run_viewers(url, n, seconds, procs, low) if n else (time.sleep(seconds) or [])
        wall = time.monotonic() - t0
        a1, w1, wn1 = cpu_of(api), cpu_of(workers), cpu_ns_of(workers)
        out.append({
            "viewers": label, "api_cpu_pct": 100 * (a1 - a0) / wall, "worker_cpu_pct": 100 * (w1 - w0) / wall,
            "worker_cpu_pct_ns": 100 * (wn1 - wn0) / wall, "loadavg_1m": psutil.getloadavg()[0],
            "p50_ms": statistics.median(d) if d else None, "p95_ms": pct(d, 95) if d else None, "frames": len(d),
        })  # fmt: skip
        print(json.dumps(out[-1]), flush=True)
    return out


def fanout_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per viewer count: the worker's CPU (schedstat's, median, min, max); for N > 0, each round's
    ratio to the 0-viewer window measured before it in the same run (interleaved counts: drift cancels)."""
    out: dict[str, Any] = {}
    base: float | None = None
    ratios: dict[str, list[float]] = {}
    for r in rows:
        if r["viewers"] == "0":
            base = r["worker_cpu_pct_ns"]
        elif base:
            ratios.setdefault(r["viewers"], []).append(r["worker_cpu_pct_ns"] / base)
    for n in dict.fromkeys(r["viewers"] for r in rows):
        w = [r["worker_cpu_pct_ns"] for r in rows if r["viewers"] == n]
        out[n] = {"worker_cpu_pct_median": statistics.median(w), "min": min(w), "max": max(w), "rounds": len(w)}
        if n in ratios:
            rs = ratios[n]
            out[n].update(ratio_to_0_median=statistics.median(rs), ratio_min=min(rs), ratio_max=max(rs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="of play per transport")
    ap.add_argument("--viewers", default="0,1,10,50", help="fan-out viewer counts (0: the idle baseline; 1L: one asking for low delay)")
    ap.add_argument("--fanout-seconds", type=float, default=20.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--modes", default="mse,hls", help="played in the browser, in order: mse (the single view, low delay), "
                    "wall (a live-wall tile, the recorder's bursts), hls (the live playlist); mode:seconds plays that long")
    ap.add_argument("--client-procs", type=int, default=1, help="processes the fan-out's viewers run in")
    ap.add_argument("--watched-pause", type=float, default=None,
                    help="workers.watched_read_coalesce_s: the reader's pause for wall viewers (default: the unwatched pause)")
    ap.add_argument("--no-low-delay", action="store_true", help="workers.low_delay_live: false (every view gets bursts)")
    ap.add_argument("--out", default="live_latency.json", help="file name under bench/results/")
    args = ap.parse_args()
    w, h = args.size.split("x")
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "size": args.size,
                              "cpus": psutil.cpu_count(), "loadavg_start": psutil.getloadavg()[0],
                              "watched_read_coalesce_s": args.watched_pause, "low_delay_live": not args.no_low_delay}  # fmt: skip
    workers: dict[str, Any] = {"processes": 1}
    if args.watched_pause is not None:
        workers["watched_read_coalesce_s"] = args.watched_pause
    if args.no_low_delay:
        workers["low_delay_live"] = False
    with tempfile.TemporaryDirectory(prefix="vigil-live-bench-") as tmp:
        with RtspServer({"/clk": f"clock:?w={w}&h={h}&fps=25&gop=25"}) as rtsp:
            v = VigilProcess(Path(tmp), [{"id": "clk", "name": "Clock", "url": rtsp.url("/clk")}],
                             recording={"segment_seconds": 4}, workers=workers)  # fmt: skip
            with v:
                key = create_key(v.catalog, "viewer", "bench")
                wait_until(lambda: (s := v.catalog.get_status("clk")) is not None and s.state == "online", 60,
                           what="camera online")  # fmt: skip
                time.sleep(10)  # a few segments: the HLS playlist has its window
                if not args.skip_browser:
                    runs = [(m.partition(":")[0], float(m.partition(":")[2] or args.seconds)) for m in args.modes.split(",")]
                    result["browser"] = [browser_run(v, key, m, s) for m, s in runs]
                    for r in result["browser"]:
                        print(json.dumps(r), flush=True)
                counts = [x.strip().upper() for x in args.viewers.split(",") if x.strip()]
                result["fanout"] = fanout(v, key, counts, args.fanout_seconds, args.client_procs) if counts else []
                if result["fanout"]:
                    result["fanout_summary"] = fanout_summary(result["fanout"])
                    print(json.dumps(result["fanout_summary"]), flush=True)
    result["loadavg_end"] = psutil.getloadavg()[0]
    out = ROOT / "bench" / "results" / args.out
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
