"""Benchmark 5 — clip export: one hour of 720p25 recording (60 one-minute fMP4 segments of one run,
as the recorder writes them) in S3 (SeaweedFS), exported as one MP4 with playback.clips.export_clip
(byte ranges from the store → PyAV remux → `+faststart` → SHA-256). Reference, same segments:
`ffmpeg -f concat -safe 0 -i list.txt -c copy -movflags +faststart out.mp4` over the 60 segment
files downloaded to local disk (the download is timed apart, and added in a second ratio).

The hour: the 60 s 720p25 GOP-50 ~2 Mbit/s bench clip's packets 60 times over with timestamps
continued, through one fragmented-MP4 muxer (movflags frag_keyframe+empty_moov+default_base_moof),
split into segments of 30 fragments (60 s) by harness/recorded.record_run, which also puts the
objects and inserts the catalog rows (~900 MB).

    /tmp/venv/bin/python bench/clip_export.py            # 1 h, 3 attempts each   (~4 min)
    /tmp/venv/bin/python bench/clip_export.py --quick    # 10 min, 1 attempt
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FFMPEG,
    clip_720p,
    count_frames,
    machine,
    md_table,
    median,
    repeat_packets,
    save_result,
    wait_quiet,
)

FMP4_FLAGS = "frag_keyframe+empty_moov+default_base_moof"
T0 = 1714557600 * 1_000_000


def long_run(minute: Path, minutes: int, out: Path) -> None:
    """`minutes` copies of the clip's packets, timestamps continued, through one fMP4 muxer."""
    repeat_packets(minute, minutes, out, FMP4_FLAGS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10 minutes, 1 attempt")
    ap.add_argument("--max-load", type=float, default=0.6)
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes, args.attempts = 10, 1

    from storage.catalog import Catalog
    from playback.clips import export_clip
    from storage.object_store import S3Store
    from harness.recorded import record_run
    from harness.servers import SeaweedS3

    clip = clip_720p()
    print(f"# Clip export, {args.minutes} min of 720p25 from S3 — {machine()}", flush=True)
    d = Path(tempfile.mkdtemp(prefix="vigil-bench-clip-"))
    s3 = SeaweedS3(d / "s3", bucket="vigil-bench")
    try:
        t = time.perf_counter()
        run = d / "run.mp4"
        long_run(clip.path, args.minutes, run)
        data = run.read_bytes()
        run.unlink()
        store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)
        cat = Catalog(f"sqlite:///{d / 'catalog.db'}")
        _, segs = record_run(store, cat, "bench", "r1" + "0" * 30, T0, data, 30, width=clip.width, height=clip.height)
        del data
        total_mb = sum(s.bytes for s in segs) / 1e6
        seconds = args.minutes * 60
        print(f"made and stored {len(segs)} segments, {total_mb:.0f} MB, in {time.perf_counter() - t:.0f} s", flush=True)

        rows = []
        vigil_s: list[float] = []
        vres = None
        for a in range(args.attempts):
            load = wait_quiet(args.max_load, what="export")
            out = d / f"clip-{a}.mp4"
            t = time.perf_counter()
            vres = export_clip(cat, store, "bench", T0, T0 + seconds * 1_000_000, out)
            dt = time.perf_counter() - t
            vigil_s.append(dt)
            rows.append(["vigil export_clip (S3 → MP4 + SHA-256)", a + 1, f"{dt:.2f}", f"{seconds / dt:.0f}×",
                         vres.frames, f"{vres.bytes / 1e6:.0f}", f"{load:.2f}"])
            print("  " + " | ".join(map(str, rows[-1])), flush=True)
            out.unlink()

        # reference: the same segments, downloaded, joined by ffmpeg's concat demuxer
        local = d / "segments"
        local.mkdir()
        load = wait_quiet(args.max_load, what="download")
        t = time.perf_counter()
        names = []
        for s in segs:
            p = local / f"{s.seq:04d}.mp4"
            with open(p, "wb") as f:
                for chunk in store.iter_range(s.object_key, 0, None):
                    f.write(chunk)
            names.append(p)
        dl_s = time.perf_counter() - t
        rows.append([f"download the {len(segs)} segments (minio client)", 1, f"{dl_s:.2f}", f"{seconds / dl_s:.0f}×", "-",
                     f"{sum(p.stat().st_size for p in names) / 1e6:.0f}", f"{load:.2f}"])
        print("  " + " | ".join(map(str, rows[-1])), flush=True)
        lst = local / "list.txt"
        lst.write_text("".join(f"file '{p}'\n" for p in names))
        ff_s: list[float] = []
        ff_frames = 0
        for a in range(args.attempts):
            load = wait_quiet(args.max_load, what="ffmpeg concat")
            out = d / f"ff-{a}.mp4"
            t = time.perf_counter()
            subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0",
                            "-i", str(lst), "-c", "copy", "-movflags", "+faststart", "-y", str(out)], check=True)
            dt = time.perf_counter() - t
            ff_s.append(dt)
            if a == 0:
                ff_frames = count_frames(out)
            rows.append(["ffmpeg -f concat -c copy -movflags +faststart (local files)", a + 1, f"{dt:.2f}",
                         f"{seconds / dt:.0f}×", ff_frames if a == 0 else "", f"{out.stat().st_size / 1e6:.0f}", f"{load:.2f}"])
            print("  " + " | ".join(map(str, rows[-1])), flush=True)
            out.unlink()
        shutil.rmtree(local, ignore_errors=True)

        v, f = median(vigil_s), median(ff_s)
        print()
        print(md_table(["step", "attempt", "seconds", "× real time", "frames", "MB", "load at start"], rows))
        print()
        print(md_table(
            ["export of", "vigil s (median)", "× real time", "ffmpeg concat s (median)", "vigil / ffmpeg",
             "vigil / (download + ffmpeg)", "targets"],
            [[f"{args.minutes} min, {len(segs)} segments, {total_mb:.0f} MB", f"{v:.2f}", f"{seconds / v:.0f}×", f"{f:.2f}",
              f"{v / f:.2f}", f"{v / (dl_s + f):.2f}", "≥ 50× real time, ≤ 1.2× ffmpeg"]],
        ))
        print(f"frames: vigil {vres.frames if vres else 0}, ffmpeg {ff_frames}, recorded {sum(s.frames for s in segs)}")
        save_result("clip_export" + ("-quick" if args.quick else ""),
                    {"args": vars(args), "vigil_s": vigil_s, "ffmpeg_s": ff_s, "download_s": dl_s, "mb": total_mb,
                     "frames": {"vigil": vres.frames if vres else 0, "ffmpeg": ff_frames}})
    finally:
        s3.stop()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
