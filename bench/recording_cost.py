"""Benchmark 1 — recording cost per camera: `vigil run` (health sampler off, then on) against one
`ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 10` process per camera, on the
same streams, in the same run.

Streams: N `file:` mounts of one 60 s 1280×720 25 fps H.264 clip (GOP 50, ~2 Mbit/s) on
GStreamer RTSP servers (camserver/server.py; ≤ 60 mounts per server process). vigil records to a
real S3 server (SeaweedFS) with 10 s segments (as the reference's -segment_time 10) and 2 worker
processes. CPU is psutil's user+system time of every process of the tree over a 40 s window
inside the clip; memory is the largest of a few samples in the window (RSS, USS, PSS summed over
the processes). Frames: each camera's first run in the catalog against the clip's frame count
(the mount sends the whole file, each client from the start). Upload lag: stored time minus
segment end, over every segment but each run's last (closed by the stream's end).

    /tmp/venv/bin/python bench/recording_cost.py --cameras 20 50 100     # ~15 min
    /tmp/venv/bin/python bench/recording_cost.py --quick                 # 5 cameras, 20 s windows
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH_CLIP_S,
    FFMPEG_SEGMENT,
    RESULTS,
    RunResult,
    clip_720p,
    fmt,
    machine,
    md_table,
    measure_bare,
    measure_ffmpeg,
    measure_vigil,
    save_result,
    serve_files,
    top_frames,
)

MB = 1e6


def row(r: RunResult, ref: RunResult | None) -> list[str]:
    m = r.mem
    ratio = f"{r.per_cam_pct / ref.per_cam_pct:.2f}×" if ref and ref.per_cam_pct else "-"
    lost = "-" if not r.frames_expected else f"{r.lost} ({r.cameras_short} cams short)"
    lag = "-" if r.lag_max_s is None else f"{r.lag_p95_s:.1f} / {r.lag_max_s:.1f}"
    return [
        str(r.n),
        r.label,
        f"{r.per_cam_pct:.3f}",
        ratio,
        f"{m['uss'] / r.n / MB:.1f}",
        f"{m['pss'] / r.n / MB:.1f}",
        f"{m['rss'] / r.n / MB:.1f}",
        str(r.processes),
        lost,
        lag,
        f"{r.server_core_pct / r.n:.3f}",
        fmt(r.s3_core_pct, ".1f"),
        f"{r.load:.2f}",
    ]


HEAD = [
    "N",
    "recorder",
    "CPU % of a core per camera",
    "vs ffmpeg",
    "USS MB/cam",
    "PSS MB/cam",
    "RSS MB/cam",
    "processes",
    "frames lost",
    "upload lag p95 / max s",
    "RTSP server % per camera",
    "S3 server % (total)",
    "load at start",
]


def slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of (N, value) points: the marginal cost of one more camera."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[20, 50, 100])
    ap.add_argument("--window", type=float, default=40.0, help="measured seconds (inside the clip)")
    ap.add_argument("--segment-seconds", type=float, default=10.0,
                    help="vigil's segment length (10 = the ffmpeg reference's; vigil's default is 60)")
    ap.add_argument("--quick", action="store_true", help="5 cameras, 20 s windows")
    ap.add_argument("--no-ffmpeg", action="store_true")
    ap.add_argument("--no-health", action="store_true", help="skip the sampler-on run")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare PyAV remuxer row")
    ap.add_argument("--uncoalesced", action="store_true",
                    help="also vigil with read coalescing off (workers.read_coalesce_s 0): the before row")
    ap.add_argument("--profile", action="store_true", help="py-spy the workers during the sampler-on runs")
    ap.add_argument("--max-load", type=float, default=0.6, help="wait for the 1-min load below this")
    ap.add_argument("--per-server", type=int, default=60, help="mounts per camserver process")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.window = [5], 20.0

    clip = clip_720p(BENCH_CLIP_S)
    print(f"# Recording cost per camera — {machine()}")
    print(f"clip: {clip.width}×{clip.height} {clip.frames} frames, {clip.seconds:.0f} s, {clip.kbps:.0f} kbit/s\n", flush=True)
    results: list[RunResult] = []
    prof_dir = RESULTS / "profiles"
    for n in args.cameras:
        with serve_files(clip.path, n, args.per_server) as mounts:
            seg = args.segment_seconds
            tag = "" if seg == 10 else f", {seg:g} s segments"
            off = measure_vigil(f"vigil (sampler off{tag})", mounts, clip, health=False, window_s=args.window,
                                max_load=args.max_load, segment_s=seg)
            print("  " + " | ".join(row(off, None)), flush=True)
            results.append(off)
            if args.uncoalesced:
                unc = measure_vigil(f"vigil (sampler off{tag}, reads uncoalesced)", mounts, clip, health=False,
                                    window_s=args.window, max_load=args.max_load, segment_s=seg,
                                    workers={"read_coalesce_s": 0})
                print("  " + " | ".join(row(unc, None)), flush=True)
                results.append(unc)
            if not args.no_health:
                on = measure_vigil(
                    f"vigil (sampler on{tag})", mounts, clip, health=True, window_s=args.window, max_load=args.max_load,
                    segment_s=seg,
                    profile_dir=prof_dir / f"recording-n{n}" if args.profile else None,
                )
                print("  " + " | ".join(row(on, None)), flush=True)
                results.append(on)
            if not args.no_floor:
                bare = measure_bare("bare PyAV remux (floor)", mounts, clip, window_s=args.window, max_load=args.max_load)
                print("  " + " | ".join(row(bare, None)), flush=True)
                results.append(bare)
            if not args.no_ffmpeg:
                ff_args = list(FFMPEG_SEGMENT)
                ff_args[ff_args.index("-segment_time") + 1] = f"{seg:g}"  # vigil's segment length
                ff = measure_ffmpeg("ffmpeg -c copy -f segment", mounts.urls, mounts, clip, ff_args,
                                    window_s=args.window, max_load=args.max_load)
                print("  " + " | ".join(row(ff, None)), flush=True)
                results.append(ff)

    print()
    rows = []
    for r in results:
        ref = next((x for x in results if x.n == r.n and x.label.startswith("ffmpeg")), None)
        rows.append(row(r, ref if r is not ref else None))
    print(md_table(HEAD, rows))

    print("\nvigil's main process (API, supervisor, uploader) apart, % of a core:")
    for r in results:
        if r.main_core_pct is not None:
            print(f"  N={r.n}, {r.label}: main {r.main_core_pct:.1f}, workers {r.core_pct - r.main_core_pct:.1f} "
                  f"({(r.core_pct - r.main_core_pct) / r.n:.3f} per camera)")
    print("\nHealth sampler alone (on − off), % of a core per camera:")
    for n in args.cameras:
        off = next((x for x in results if x.n == n and x.label == "vigil (sampler off)"), None)
        on = next((x for x in results if x.n == n and x.label == "vigil (sampler on)"), None)
        if off and on:
            print(f"  N={n}: {on.per_cam_pct - off.per_cam_pct:.3f}")

    for label in ("vigil (sampler off)", "vigil (sampler on)", "bare PyAV remux (floor)", "ffmpeg -c copy -f segment"):
        pts_cpu = [(r.n, r.core_pct) for r in results if r.label == label]
        pts_uss = [(r.n, r.mem["uss"] / MB) for r in results if r.label == label]
        pts_pss = [(r.n, r.mem["pss"] / MB) for r in results if r.label == label]
        s_cpu, s_uss, s_pss = slope(pts_cpu), slope(pts_uss), slope(pts_pss)
        if s_cpu is not None:
            print(f"marginal per camera, {label}: CPU {s_cpu:.3f} % of a core, USS {s_uss:.2f} MB, PSS {s_pss:.2f} MB")
    for r in results:
        for note in r.notes:
            print(f"note (N={r.n}, {r.label}): {note}")
    if args.profile:
        for n in args.cameras:
            files = sorted((prof_dir / f"recording-n{n}").glob("*.txt"))
            if files:
                print(f"\npy-spy, sampler on, N={n}, workers (self %, inclusive %):")
                for f, s, i in top_frames(files, 12):
                    print(f"  {s:5.1f} {i:5.1f}  {f}")
    name = "recording_cost" + ("" if args.segment_seconds == 10 else f"-seg{args.segment_seconds:g}") + ("-quick" if args.quick else "")
    save_result(name, {"args": vars(args), "clip": clip, "runs": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
