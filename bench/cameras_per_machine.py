"""Benchmark 3 — cameras per machine: how many 720p25 cameras one 2-core machine records and
health-checks.

1. Estimate: 200 % (two cores) divided by vigil's CPU per camera with the sampler on, measured at
   `--estimate-n` cameras (benchmark 1's method; or taken from bench/results/recording_cost.json
   with `--from-results`). Memory per camera (USS) gives the RAM bound alongside.
2. Confirm: record N cameras (sampler on, 10 s segments, SeaweedFS S3) for ascending N while the same
   machine also serves them (the GStreamer RTSP server, `file:` mounts of the bench clip). A step
   passes when every camera was live, no frame was lost (each camera's first run holds the whole
   clip) and the upload lag stayed below one segment (every segment stored < 10 s after its end).
   The largest passing N is the confirmed figure *with the RTSP server on the same cores*; the RTSP
   server's CPU, SeaweedFS's and the whole machine's are reported apart.

    /tmp/venv/bin/python bench/cameras_per_machine.py --from-results --confirm 50 75 100 150 200
    /tmp/venv/bin/python bench/cameras_per_machine.py --quick          # estimate at 10, confirm 10 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_CLIP_S, RESULTS, RunResult, clip_720p, fmt, machine, md_table, measure_vigil, save_result, serve_files  # noqa: E402

MB = 1e6


def passed(r: RunResult) -> tuple[bool, str]:
    why = []
    if r.lost:
        why.append(f"{r.lost} frames lost ({r.cameras_short} cameras short)")
    if r.lag_max_s is None or r.lag_max_s >= r.segment_s:
        why.append(f"upload lag {fmt(r.lag_max_s, '.1f')} s ≥ {r.segment_s:g} s")
    for n in r.notes:
        if "live" in n:
            why.append(n)
    return (not why, "; ".join(why) or "ok")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--estimate-n", type=int, default=100)
    ap.add_argument("--from-results", action="store_true", help="take the estimate from recording_cost.json")
    ap.add_argument("--confirm", type=int, nargs="+", default=[50, 75, 100, 150, 200])
    ap.add_argument("--window", type=float, default=40.0)
    ap.add_argument("--processes", type=int, default=2, help="vigil worker processes")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-load", type=float, default=0.6)
    ap.add_argument("--keep-going", action="store_true", help="run every N even after a failure")
    args = ap.parse_args(argv)
    if args.quick:
        args.estimate_n, args.confirm, args.window = 10, [10, 20], 20.0

    clip = clip_720p(BENCH_CLIP_S)
    print(f"# Cameras per machine — {machine()}", flush=True)
    est_on = est_off = None
    if args.from_results and (RESULTS / "recording_cost.json").exists():
        runs = json.loads((RESULTS / "recording_cost.json").read_text())["runs"]
        big = max(r["n"] for r in runs)
        on = next(r for r in runs if r["n"] == big and r["label"] == "vigil (sampler on)")
        off = next(r for r in runs if r["n"] == big and r["label"] == "vigil (sampler off)")
        est_on = (on["core_pct"] / big, on["mem"]["uss"] / big / MB, on["server_core_pct"] / big, big)
        est_off = (off["core_pct"] / big, off["mem"]["uss"] / big / MB, off["server_core_pct"] / big, big)
    else:
        with serve_files(clip.path, args.estimate_n) as mounts:
            off = measure_vigil("vigil (sampler off)", mounts, clip, health=False, window_s=args.window, max_load=args.max_load)
            on = measure_vigil("vigil (sampler on)", mounts, clip, health=True, window_s=args.window, max_load=args.max_load)
        est_on = (on.per_cam_pct, on.mem["uss"] / on.n / MB, on.server_core_pct / on.n, on.n)
        est_off = (off.per_cam_pct, off.mem["uss"] / off.n / MB, off.server_core_pct / off.n, off.n)

    ram_mb = machine()["ram_gb"] * 1024
    est_rows = []
    for label, (cpu, uss, srv, n) in (("sampler on", est_on), ("sampler off", est_off)):
        est_rows.append([label, n, f"{cpu:.3f}", f"{200 / cpu:.0f}", f"{srv:.3f}", f"{200 / (cpu + srv):.0f}",
                         f"{uss:.1f}", f"{ram_mb * 0.8 / uss:,.0f}"])
    print()
    print(md_table(["vigil", "measured at N", "CPU % per camera", "cameras per 2 cores (CPU)",
                    "RTSP server % per camera", "… with the RTSP server on the same cores", "USS MB per camera",
                    "cameras per 80 % of RAM"], est_rows))
    print(flush=True)

    rows = []
    confirmed = 0
    results: list[RunResult] = []
    for n in args.confirm:
        with serve_files(clip.path, n) as mounts:
            r = measure_vigil(f"vigil (sampler on), N={n}", mounts, clip, health=True, window_s=args.window,
                              processes=args.processes, max_load=args.max_load)
        results.append(r)
        ok, why = passed(r)
        rows.append([n, f"{r.core_pct:.0f}", f"{r.per_cam_pct:.3f}", f"{r.server_core_pct:.0f}", fmt(r.s3_core_pct, ".0f"),
                     f"{r.machine_busy_pct:.0f}", f"{r.mem['uss'] / MB:.0f}", f"{r.lost}",
                     f"{fmt(r.lag_p95_s, '.1f')} / {fmt(r.lag_max_s, '.1f')}", "yes" if ok else f"no: {why}", f"{r.load:.2f}"])
        print("  " + " | ".join(map(str, rows[-1])), flush=True)
        if ok:
            confirmed = max(confirmed, n)
        elif not args.keep_going:
            break
    print()
    print(md_table(["N", "vigil CPU % of a core", "per camera", "RTSP server %", "SeaweedFS %", "machine busy % (of 200)",
                    "vigil USS MB", "frames lost", "upload lag p95 / max s", "passes", "load at start"], rows))
    print(f"\nestimate: {200 / est_on[0]:.0f} cameras per 2 cores (vigil alone, sampler on); "
          f"{200 / (est_on[0] + est_on[2]):.0f} with the RTSP server on the same cores; "
          f"confirmed with server + recorder on this machine: {confirmed} (target ≥ 400 per 2 cores)")
    save_result("cameras_per_machine" + ("-quick" if args.quick else ""),
                {"args": vars(args), "estimate_on": est_on, "estimate_off": est_off, "confirm": results, "confirmed": confirmed})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
