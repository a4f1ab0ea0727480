"""Benchmark 1, interleaved: vigil (sampler off) and the ffmpeg reference measured alternately on
the same mounts, K rounds, so a drift in the machine's speed (10 % within an hour on this VM) falls
on both sides of each ratio. Prints each round's ratio; writes results/recording_rounds.json.

    .venv/bin/python bench/recording_rounds.py --cameras 50 --rounds 3
    git worktree add /tmp/before <commit>
    .venv/bin/python bench/recording_rounds.py --cameras 50 --rounds 3 --before /tmp/before

With `--before`, each round also runs that checkout's vigil (same mounts, same clip, between this
one and ffmpeg), and prints this vigil's cost ÷ the older one's per round: a change's cost, with the
machine's drift falling on both sides.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FFMPEG_SEGMENT, clip_720p, machine, measure_ffmpeg, measure_vigil, median, save_result, serve_files  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-load", type=float, default=1.2, help="wait for the 1-min load below this")
    ap.add_argument("--before", type=Path, default=None, help="a checkout of an older commit: its vigil too, each round")
    args = ap.parse_args(argv)
    n = args.cameras
    clip = clip_720p(90)
    print(f"# Recording cost, interleaved rounds — {machine()}", flush=True)
    rounds: list[dict[str, float]] = []
    with serve_files(clip.path, n) as mounts:
        for r in range(args.rounds):
            b = None
            if args.before is not None and r % 2:  # odd rounds: the older one first (drift on both sides)
                b = measure_vigil("vigil before (sampler off)", mounts, clip, health=False, max_load=args.max_load,
                                  repo=args.before)
            v = measure_vigil("vigil (sampler off)", mounts, clip, health=False, max_load=args.max_load)
            if args.before is not None and b is None:
                b = measure_vigil("vigil before (sampler off)", mounts, clip, health=False, max_load=args.max_load,
                                  repo=args.before)
            f = measure_ffmpeg("ffmpeg -c copy -f segment", mounts.urls, mounts, clip, FFMPEG_SEGMENT, max_load=args.max_load)
            lost = v.frames_expected * n - v.frames_total
            row = {"vigil": v.core_pct / n, "vigil_main": v.main_core_pct / n, "vigil_workers": (v.workers_core_pct or 0) / n,
                   "ffmpeg": f.core_pct / n, "ratio": v.core_pct / f.core_pct, "vigil_frames_lost": lost}
            line = (f"round {r} N={n} vigil {v.core_pct / n:.4f} (main {v.main_core_pct / n:.4f}, lost {lost}) "
                    f"ffmpeg {f.core_pct / n:.4f} ratio {v.core_pct / f.core_pct:.3f}")
            if b is not None:
                row |= {"before": b.core_pct / n, "before_ratio": b.core_pct / f.core_pct, "after_over_before": v.core_pct / b.core_pct,
                        "before_workers": (b.workers_core_pct or 0) / n,
                        "workers_after_over_before": (v.workers_core_pct or 0) / max(b.workers_core_pct or 0, 1e-9),
                        "before_frames_lost": b.frames_expected * n - b.frames_total}
                line += (f" | before {b.core_pct / n:.4f} (lost {row['before_frames_lost']}) after÷before {row['after_over_before']:.3f}"
                         f" | workers alone {row['vigil_workers']:.4f} vs {row['before_workers']:.4f}: "
                         f"{row['workers_after_over_before']:.3f}")
            rounds.append(row)
            print(line, flush=True)
    ratios = [x["ratio"] for x in rounds]
    print(f"median ratio vigil ÷ ffmpeg at N = {n}: {median(ratios):.3f} (spread {min(ratios):.3f}–{max(ratios):.3f})")
    if args.before is not None:
        ab = [x["after_over_before"] for x in rounds]
        print(f"median vigil now ÷ before at N = {n}: {median(ab):.3f} (spread {min(ab):.3f}–{max(ab):.3f})")
        wb = [x["workers_after_over_before"] for x in rounds]
        print(f"median workers now ÷ before at N = {n}: {median(wb):.3f} (spread {min(wb):.3f}–{max(wb):.3f})")
    save_result("recording_rounds", {"cameras": n, "before": str(args.before) if args.before else None, "rounds": rounds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
