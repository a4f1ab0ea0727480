"""What a reading cadence costs the recorder: one RTSP connection read by one thread, the CPU of
that thread alone, for each way of waiting between frames, in interleaved rounds.

Modes (the pause after a video packet read at the live edge):
  idle    0.2 s — the unwatched recorder (the reference every ratio is against)
  w20     20 ms — the former watched cadence
  socket  none: wait on the socket for the next frame — the watched cadence kept
  timer   sleep until the next frame's expected arrival + 3 ms (a phase-locked timer)

For each: CPU % of a core of the reading thread, its context switches per second (wake-ups), and
how far behind the live edge each frame was read (p50/p95). docs/design/live.md, "Cost of being
watched", holds the figures.

Usage: .venv/bin/python bench/read_cadence.py [--camera clock|file] [--seconds 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import clip_720p, machine, save_result  # noqa: E402
from harness.servers import RtspServer  # noqa: E402
from ingest.source import WAITED_S, AvSource, LiveEdge, SourceOptions  # noqa: E402

MODES = ("idle", "w20", "socket", "timer")
WARM_S = 3.0


def _switches() -> int:
    """This thread's context switches so far (voluntary + involuntary)."""
    n = 0
    with open(f"/proc/self/task/{threading.get_native_id()}/status") as f:
        for line in f:
            if "ctxt_switches" in line:
                n += int(line.split(":")[1])
    return n


def read(url: str, mode: str, seconds: float) -> dict[str, float]:
    """Read `seconds` (after a warm-up) with one cadence; the thread's CPU and wake-ups, the lags."""
    src = AvSource(url, SourceOptions())
    try:
        it = iter(src.container.demux(src._streams))
        tb = float(src.video.time_base)
        video = src.video.index
        edge = LiveEdge(near_s=0.1)
        interval, last_m, off = 0.04, None, None
        lags: list[float] = []
        warm = time.monotonic() + WARM_S
        c0 = x0 = w0 = None
        while True:
            t0 = time.monotonic()
            pkt = next(it, None)
            t1 = time.monotonic()
            if pkt is None:
                raise RuntimeError("the camera's stream ended")
            if pkt.dts is None or pkt.stream_index != video:
                continue
            m = pkt.dts * tb
            if last_m is not None and 0 < m - last_m < 2:
                interval = 0.9 * interval + 0.1 * (m - last_m)
            last_m = m
            fresh = edge.at_edge(t1 - t0 >= WAITED_S, t1, m)
            if t1 > warm:
                if c0 is None:
                    c0, x0, w0 = time.thread_time(), _switches(), t1
                lags.append(t1 - m)
                if t1 - w0 >= seconds:
                    break
            if not fresh:
                continue
            if mode == "idle":
                time.sleep(0.2)
            elif mode == "w20":
                time.sleep(0.02)
            elif mode == "timer":
                lag = t1 - m
                if off is None or (t1 - t0 > 0.001 and lag > off):
                    off = lag  # the read waited: the frame came later than aimed at
                else:
                    off -= 0.0005  # aim a little earlier each frame, until a read waits again
                d = off + m + interval + 0.003 - time.monotonic()
                if d > 0:
                    time.sleep(min(d, 0.2))
        assert c0 is not None and x0 is not None and w0 is not None
        wall = time.monotonic() - w0
        cpu, sw = time.thread_time() - c0, _switches() - x0
    finally:
        src.close()
    e = min(lags)
    ls = sorted(x - e for x in lags)
    return {"cpu_pct": 100 * cpu / wall, "wakeups_per_s": sw / wall, "fps": len(lags) / wall,
            "lag_p50_ms": 1000 * ls[len(ls) // 2], "lag_p95_ms": 1000 * ls[int(len(ls) * 0.95)]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camera", choices=("clock", "file"), default="clock",
                    help="clock: 720p25 clock camera (low bitrate); file: a 720p25 ~2 Mbit/s clip")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args(argv)
    modes = args.modes.split(",")
    if "idle" not in modes:
        modes.insert(0, "idle")
    spec = "clock:?w=1280&h=720&fps=25&gop=25"
    if args.camera == "file":
        spec = f"file:{clip_720p(int(args.seconds + WARM_S + 30)).path}"
    print(f"# Read cadence, {args.camera} camera — {machine()}", flush=True)
    res: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with RtspServer({"/c": spec}) as rtsp:
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:  # drift falls on both sides
                x = read(rtsp.url("/c"), mode, args.seconds)
                res[mode].append(x)
                print(f"round {r} {mode:6s} cpu {x['cpu_pct']:.3f} % wake-ups {x['wakeups_per_s']:.0f}/s "
                      f"lag p50 {x['lag_p50_ms']:.1f} p95 {x['lag_p95_ms']:.1f} ms", flush=True)
    ref = res["idle"]
    for mode in modes:
        ratios = [x["cpu_pct"] / i["cpu_pct"] for x, i in zip(res[mode], ref)]
        cpu = [x["cpu_pct"] for x in res[mode]]
        print(f"{mode:6s} cpu median {statistics.median(cpu):.3f} % ({min(cpu):.3f}–{max(cpu):.3f}); "
              f"÷ idle {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}); "
              f"wake-ups {statistics.median(x['wakeups_per_s'] for x in res[mode]):.0f}/s")
    path = save_result(f"read_cadence-{args.camera}", {"seconds": args.seconds, "rounds": args.rounds, "results": res})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
