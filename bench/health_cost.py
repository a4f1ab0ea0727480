"""Benchmark 2 — health sampler cost per camera: `vigil run` with the sampler on minus the same run
with it off (`health: {enabled: false}`), against `ffmpeg -rtsp_transport tcp -i URL -vf
freezedetect -f null -` per camera (the tool that does this job by decoding every frame).

Same streams as benchmark 1 (N `file:` mounts of the 60 s 720p25 GOP-50 ~2 Mbit/s clip). The
reference is measured on a few cameras (default 5): each costs ~5 % of a core. Then a breakdown of
the sampler's per-keyframe work, in this process on the clip's keyframes, one thread: decode
(keyframes only), figures (ingest/health/metrics.measure_picture + trimmed_diff), snapshot JPEG.

    /tmp/venv/bin/python bench/health_cost.py --cameras 50 --reference 5     # ~5 min
    /tmp/venv/bin/python bench/health_cost.py --quick                        # 5 cameras, 2 reference, 20 s
    /tmp/venv/bin/python bench/health_cost.py --breakdown-only               # the per-keyframe table only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FFMPEG_FREEZEDETECT,
    RESULTS,
    clip_720p,
    machine,
    md_table,
    measure_ffmpeg,
    measure_vigil,
    save_result,
    serve_files,
    top_frames,
)


def breakdown(clip_path: Path) -> dict[str, float]:
    """Median ms per sampled keyframe of each step the sampler runs (ingest/health/monitor._measure)."""
    import av

    from ingest.health.metrics import measure_picture, snapshot_jpeg, trimmed_diff

    out: dict[str, list[float]] = {"decode": [], "figures": [], "jpeg": []}
    refs: list = []
    with av.open(str(clip_path)) as c:
        vs = c.streams.video[0]
        dec = av.CodecContext.create(vs.codec_context.name, "r")
        dec.extradata = vs.codec_context.extradata
        dec.thread_count = 1
        dec.skip_frame = "NONKEY"
        for pkt in c.demux(vs):
            if not pkt.is_keyframe or pkt.size == 0:
                continue
            t0 = time.perf_counter()
            frames = dec.decode(pkt)
            t1 = time.perf_counter()
            if not frames:
                continue
            pic = measure_picture(frames[-1], 32.0)
            for r in refs[-3:]:
                trimmed_diff(pic.reference, r)
            refs.append(pic.reference)
            t2 = time.perf_counter()
            snapshot_jpeg(frames[-1])
            t3 = time.perf_counter()
            out["decode"].append((t1 - t0) * 1e3)
            out["figures"].append((t2 - t1) * 1e3)
            out["jpeg"].append((t3 - t2) * 1e3)
    return {k: statistics.median(v[1:]) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cameras", type=int, default=50, help="cameras for the vigil on/off runs")
    ap.add_argument("--reference", type=int, default=5, help="cameras for the freezedetect reference")
    ap.add_argument("--window", type=float, default=40.0)
    ap.add_argument("--quick", action="store_true", help="5 cameras, 2 reference, 20 s windows")
    ap.add_argument("--profile", action="store_true", help="py-spy the workers during the sampler-on run")
    ap.add_argument("--breakdown-only", action="store_true")
    ap.add_argument("--max-load", type=float, default=0.6)
    ap.add_argument("--sample-interval", type=float, default=None, help="health.sample_interval_s for the on run")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.reference, args.window = 5, 2, 20.0

    clip = clip_720p()
    print(f"# Health sampler cost — {machine()}")
    print(f"clip: {clip.width}×{clip.height}, {clip.frames} frames, GOP 50 (a keyframe every 2 s), {clip.kbps:.0f} kbit/s\n", flush=True)
    bd = breakdown(clip.path)
    per_kf = sum(bd.values())
    print("Per sampled keyframe, one thread, median ms (a sample every 2 s at GOP 50):")
    print(md_table(["decode keyframe", "figures (measure + 3 diffs)", "snapshot JPEG", "total", "→ % of a core per camera"],
                   [[f"{bd['decode']:.2f}", f"{bd['figures']:.2f}", f"{bd['jpeg']:.2f}", f"{per_kf:.2f}", f"{per_kf / 2000 * 100:.3f}"]]))
    print(flush=True)
    if args.breakdown_only:
        return 0

    over = {"sample_interval_s": args.sample_interval} if args.sample_interval else None
    with serve_files(clip.path, max(args.cameras, args.reference)) as mounts:
        sub = mounts.urls[: args.cameras]

        class _Sub:  # the first `cameras` mounts, same servers
            urls = sub
            pids = mounts.pids

        off = measure_vigil("vigil (sampler off)", _Sub, clip, health=False, window_s=args.window, max_load=args.max_load)  # type: ignore[arg-type]
        print(f"  off: {off.per_cam_pct:.3f} % per camera", flush=True)
        on = measure_vigil(
            "vigil (sampler on)", _Sub, clip, health=True, window_s=args.window, max_load=args.max_load,  # type: ignore[arg-type]
            profile_dir=RESULTS / "profiles" / f"health-n{args.cameras}" if args.profile else None,
            health_overrides=over,
        )
        print(f"  on: {on.per_cam_pct:.3f} % per camera", flush=True)
        fd = measure_ffmpeg("ffmpeg freezedetect", mounts.urls[: args.reference], mounts, clip, FFMPEG_FREEZEDETECT,
                            window_s=args.window, outputs=False, max_load=args.max_load)
        print(f"  freezedetect: {fd.per_cam_pct:.3f} % per camera", flush=True)

    sampler = on.per_cam_pct - off.per_cam_pct
    ref = fd.per_cam_pct
    print()
    print(md_table(
        ["cameras", "sampler on", "sampler off", "sampler alone", "freezedetect (per camera, N=%d)" % fd.n, "sampler / freezedetect", "target", "loads at start"],
        [[str(on.n), f"{on.per_cam_pct:.3f}", f"{off.per_cam_pct:.3f}", f"{sampler:.3f}", f"{ref:.3f}",
          f"1/{ref / sampler:.0f}" if sampler > 0 else "-", "≤ 0.15 % and ≤ 1/30",
          f"{off.load:.2f} / {on.load:.2f} / {fd.load:.2f}"]],
    ))
    print(f"(% of one core per camera; frames lost with the sampler on: {on.lost})")
    if args.profile:
        files = sorted((RESULTS / "profiles" / f"health-n{args.cameras}").glob("*.txt"))
        if files:
            print("\npy-spy, sampler on, workers (self %, inclusive %):")
            for f, s, i in top_frames(files, 15):
                print(f"  {s:5.1f} {i:5.1f}  {f}")
    save_result("health_cost" + ("-quick" if args.quick else ""),
                {"args": vars(args), "breakdown_ms": bd, "off": off, "on": on, "freezedetect": fd, "sampler_pct": sampler})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
