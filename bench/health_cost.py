"""Benchmark 2 — health sampler cost per camera: `vigil run` with the sampler on minus the same run
with it off (`health: {enabled: false}`), against `ffmpeg -rtsp_transport tcp -i URL -vf
freezedetect -f null -` per camera (the tool that does this job by decoding every frame).

Same streams as benchmark 1 (N `file:` mounts of the 60 s 720p25 GOP-50 ~2 Mbit/s clip). The
reference is measured on a few cameras (default 5): each costs ~5 % of a core. Then a breakdown of
the sampler's per-keyframe work, in this process on the clip's keyframes, one thread: decode
(keyframes only), figures (ingest/health/metrics.measure_picture + trimmed_diff), snapshot JPEG,
and the monitor replayed on the clip in steady state (CPU time: process_time, never wall time).
`--against REV` replays the sampler of git REV too, alternating with this tree in the same run, so a
change is measured before/after under the same load.

    .venv/bin/python bench/health_cost.py --cameras 50 --reference 5        # ~5 min
    .venv/bin/python bench/health_cost.py --quick                           # 5 cameras, 2 reference, 20 s
    .venv/bin/python bench/health_cost.py --breakdown-only --against HEAD~1 # in-process tables only, ~2 min
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH_CLIP_S,
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
    """Median ms of CPU per sampled keyframe of each step the sampler runs (ingest/health/monitor._measure)."""
    import av

    from ingest.health.keyframe import decode_keyframe, open_keyframe_decoder
    from ingest.health.metrics import measure_picture, snapshot_jpeg, trimmed_diff

    out: dict[str, list[float]] = {"decode": [], "figures": [], "jpeg": []}
    refs: list = []
    with av.open(str(clip_path)) as c:
        vs = c.streams.video[0]
        dec = open_keyframe_decoder(vs.codec_context)
        for pkt in c.demux(vs):
            if not pkt.is_keyframe or pkt.size == 0:
                continue
            t0 = time.process_time()
            frame = decode_keyframe(dec, pkt)
            t1 = time.process_time()
            if frame is None:
                continue
            pic = measure_picture(frame, 32.0)
            for r in refs[-3:]:
                trimmed_diff(pic.reference, r)
            refs.append(pic.reference)
            t2 = time.process_time()
            snapshot_jpeg(frame)
            t3 = time.process_time()
            out["decode"].append((t1 - t0) * 1e3)
            out["figures"].append((t2 - t1) * 1e3)
            out["jpeg"].append((t3 - t2) * 1e3)
    return {k: statistics.median(v[1:]) for k, v in out.items()}


def replay_cost(clip_path: Path, overrides: dict[str, Any], skip_s: float = 20.0) -> tuple[float, int, int, float]:
    """CPU of HealthMonitor.on_packet + tick per second of video, in this process on a fake clock.

    The clip's packets are fed as a session would (every packet, the watchdog every 0.5 s, status
    writes to a real SQLite catalog); only the part after `skip_s` is timed, so the start-up (every
    keyframe until the sharpness baseline holds 5 samples) is left out: the steady state of a
    camera that has been running. Returns (% of a core, keyframes sampled in the timed part,
    keyframes, seconds of video timed).
    """
    import tempfile

    import av

    from ingest.health.monitor import HealthMonitor, InlineExecutor
    from storage.catalog import Catalog
    from harness.fakes import FakeClock
    from core.settings import HealthConfig

    with av.open(str(clip_path)) as c:
        vs = c.streams.video[0]
        pkts = [p for p in c.demux(vs) if p.size]
        tb = float(vs.time_base)
        with tempfile.TemporaryDirectory() as tmp:
            clock = FakeClock()
            mon = HealthMonitor("bench", HealthConfig(**overrides), catalog=Catalog(f"sqlite:///{tmp}/c.db"),
                                store=None, clock=clock, executor=InlineExecutor())
            t0 = clock.monotonic()
            next_tick, cpu, timed_s, dec0, key0 = t0 + 0.5, 0.0, 0.0, 0, 0
            for i, p in enumerate(pkts):
                dur = float(p.duration * tb) if p.duration else 0.04
                timed = clock.monotonic() - t0 >= skip_s
                if timed and not timed_s:
                    dec0, key0 = mon.samples, mon.keyframes
                c0 = time.process_time()
                mon.on_packet(p, clock.monotonic())
                if i == 0:
                    mon.on_connected("bench", vs)
                clock.advance(dur)
                if clock.monotonic() >= next_tick:
                    mon.tick()
                    next_tick += 0.5
                if timed:
                    cpu += time.process_time() - c0
                    timed_s += dur
            mon.close()
    return cpu / timed_s * 100, mon.samples - dec0, mon.keyframes - key0, timed_s


REPLAYS = {  # label → health settings; "packets only" is the floor every camera pays (no decoding)
    "default (sample_interval_s 10)": {},
    "every keyframe (sample_interval_s 0)": {"sample_interval_s": 0},
    "packets only (enabled: false)": {"enabled": False},
}


def replay_table(clip_path: Path, repeats: int) -> dict[str, Any]:
    """Each replay `repeats` times (the least CPU kept: the others were slowed by the machine's load)
    and the CPU per decoded sample: (every keyframe − packets only) ÷ keyframes decoded."""
    out: dict[str, Any] = {}
    for label, ov in REPLAYS.items():
        runs = [replay_cost(clip_path, ov) for _ in range(repeats)]
        pct, dec, keys, secs = min(runs)
        out[label] = {"pct": pct, "decoded": dec, "keyframes": keys, "seconds": secs}
    every, floor = out["every keyframe (sample_interval_s 0)"], out["packets only (enabled: false)"]
    out["ms_per_sample"] = (every["pct"] - floor["pct"]) / 100 * every["seconds"] / max(1, every["decoded"]) * 1e3
    return out


def replay_against(clip_path: Path, rev: str, repeats: int) -> list[tuple[str, dict[str, Any]]]:
    """The replay table for this tree and for the sampler at git `rev`, alternating, in this one run."""
    import json
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    out: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            for _ in range(2):
                for label, code in ((rev, tree), ("this tree", root)):
                    res = subprocess.run(
                        [sys.executable, str(Path(__file__).resolve()), "--replay-json", "--code", str(code), "--repeats", str(repeats)],
                        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                    )
                    out.append((label, json.loads(res.stdout.splitlines()[-1])))
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)
    return out


def print_replay(rows: list[tuple[str, dict[str, Any]]]) -> None:
    labels = list(REPLAYS)
    print("Monitor replayed in this process after a 20 s start-up (steady state, catalog writes included), CPU time:")
    print(md_table(
        ["code", *[f"{lab}: % of a core (keyframes sampled)" for lab in labels], "ms CPU per decoded sample"],
        [[code, *[f"{r[lab]['pct']:.3f} ({r[lab]['decoded']}/{r[lab]['keyframes']})" for lab in labels], f"{r['ms_per_sample']:.2f}"]
         for code, r in rows],
    ))
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cameras", type=int, default=50, help="cameras for the vigil on/off runs")
    ap.add_argument("--reference", type=int, default=5, help="cameras for the freezedetect reference")
    ap.add_argument("--window", type=float, default=40.0)
    ap.add_argument("--quick", action="store_true", help="5 cameras, 2 reference, 20 s windows")
    ap.add_argument("--profile", action="store_true", help="py-spy the workers during the sampler-on run")
    ap.add_argument("--breakdown-only", action="store_true")
    ap.add_argument("--max-load", type=float, default=0.6)
    ap.add_argument("--against", metavar="REV", help="also replay the sampler at git REV (a worktree), alternating with this tree")
    ap.add_argument("--repeats", type=int, default=3, help="replays per setting; the least CPU is kept")
    ap.add_argument("--replay-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help=argparse.SUPPRESS)
    ap.add_argument("--sample-interval", type=float, default=None, help="health.sample_interval_s for the on run (0 = every keyframe, the previous behaviour)")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.reference, args.window = 5, 2, 20.0

    clip = clip_720p(BENCH_CLIP_S)
    if args.replay_json:  # one row of --against, for the code at --code
        import json

        sys.path.insert(0, str(args.code))
        print(json.dumps(replay_table(clip.path, args.repeats)))
        return 0
    print(f"# Health sampler cost — {machine()}; load {os.getloadavg()[0]:.2f}")
    print(f"clip: {clip.width}×{clip.height}, {clip.frames} frames, GOP 50 (a keyframe every 2 s), {clip.kbps:.0f} kbit/s\n", flush=True)
    bd = breakdown(clip.path)
    per_kf = sum(bd.values())
    print("Per sampled keyframe, one thread, median ms of CPU (a sample every 2 s at GOP 50):")
    print(md_table(["decode keyframe", "figures (measure + 3 diffs)", "snapshot JPEG", "total", "→ % of a core per camera"],
                   [[f"{bd['decode']:.2f}", f"{bd['figures']:.2f}", f"{bd['jpeg']:.2f}", f"{per_kf:.2f}", f"{per_kf / 2000 * 100:.3f}"]]))
    print(flush=True)
    if args.against:
        rows = replay_against(clip.path, args.against, args.repeats)
    else:
        rows = [("this tree", replay_table(clip.path, args.repeats))]
    print_replay(rows)
    print(f"load after the replays: {os.getloadavg()[0]:.2f}\n", flush=True)
    if args.breakdown_only:
        return 0

    over = {"sample_interval_s": args.sample_interval} if args.sample_interval is not None else None
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
                {"args": {k: str(v) for k, v in vars(args).items()}, "breakdown_ms": bd, "replay": rows, "off": off, "on": on, "freezedetect": fd, "sampler_pct": sampler})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
