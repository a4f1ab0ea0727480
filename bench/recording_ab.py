"""Recording cost of this checkout against an older one, measured at the same time: both (and a
second copy of this one, the control) record the same N file mounts side by side, and each window
gives the ratio of their worker processes' CPU per camera. The machine's drift (10 % within an
hour on this VM) falls on all of them at once, so a small difference shows; the control's ratio
(this ÷ this) is the noise floor of the same run.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/recording_ab.py --before /tmp/before --cameras 30 --windows 10

`--now <checkout>` puts another tree in this checkout's place (to time one commit against its parent).

Writes results/recording_ab.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import TreeMeter, _live_cameras, clip_720p, machine, save_result, serve_files, wait_quiet  # noqa: E402
from harness.servers import SeaweedS3  # noqa: E402
from harness.vigilproc import REPO, VigilProcess  # noqa: E402

def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the older commit")
    ap.add_argument("--now", type=Path, default=REPO, help="the newer checkout (this one by default)")
    ap.add_argument("--cameras", type=int, default=30, help="per tree (three trees record at once)")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--window-s", type=float, default=10.0)
    ap.add_argument("--max-load", type=float, default=1.2)
    args = ap.parse_args(argv)
    n = args.cameras
    trees = {"now": args.now, "control": args.now, "before": args.before}
    # every window inside the clip: connect (≤ 60 s) + settle + the windows
    clip = clip_720p(int(90 + args.windows * args.window_s))
    print(f"# Recording cost side by side, {n} cameras per tree — {machine()}", flush=True)
    with serve_files(clip.path, n) as mounts:
        wait_quiet(args.max_load, what="the trees")
        procs: dict[str, VigilProcess] = {}
        s3s: list[SeaweedS3] = []
        t_us = int(time.time() * 1e6)
        try:
            for name, repo in trees.items():
                work = Path(tempfile.mkdtemp(prefix=f"vigil-ab-{name}-"))
                cams = [{"id": f"cam{i:03d}", "url": u} for i, u in enumerate(mounts.urls)]
                s3s.append(SeaweedS3(work / "s3", bucket="vigil-bench"))
                procs[name] = VigilProcess(
                    work / "vigil", cams, s3=s3s[-1], repo=repo,
                    recording={"segment_seconds": 10}, health={"enabled": False},
                    workers={"processes": 2, "backoff_initial_s": 120.0, "backoff_max_s": 120.0},
                    spool={"path": str(work / "vigil" / "spool"), "max_bytes": "20GB"},
                ).start(timeout=120)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and min(
                _live_cameras(p.workdir / "catalog.db", t_us) for p in procs.values()
            ) < n:
                time.sleep(0.5)
            time.sleep(5.0)  # every camera's first segment open
            # the worker processes alone: the per-camera work (the main and API processes are fixed costs)
            meters = {name: TreeMeter(p.worker_pids) for name, p in procs.items()}
            rows: list[dict[str, float]] = []
            for w in range(args.windows):
                for m in meters.values():
                    m.start()
                time.sleep(args.window_s)
                for m in meters.values():
                    m.stop()
                pct = {k: 100 * m.cpu_s / m.wall_s / n for k, m in meters.items()}
                row = {**pct, "now_over_before": pct["now"] / pct["before"], "now_over_control": pct["now"] / pct["control"]}
                rows.append(row)
                print(f"window {w}: % of a core per camera — now {pct['now']:.4f}, control {pct['control']:.4f}, "
                      f"before {pct['before']:.4f} | now ÷ before {row['now_over_before']:.3f}, "
                      f"now ÷ control {row['now_over_control']:.3f}", flush=True)
        finally:
            for p in procs.values():
                p.stop()
            for s3 in s3s:
                s3.stop()
    ab = [r["now_over_before"] for r in rows]
    aa = [r["now_over_control"] for r in rows]
    print(f"now ÷ before:  median {spread(ab)}")
    print(f"now ÷ control: median {spread(aa)}  (the same code: the noise of this run)")
    save_result("recording_ab", {"cameras": n, "now": str(args.now), "before": str(args.before), "windows": rows,
                                 "now_over_before": ab, "now_over_control": aa})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
