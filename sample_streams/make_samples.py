"""Regenerate the demo clips in sample_streams/ (deterministic; run with the venv's Python).

    python sample_streams/make_samples.py [--out sample_streams]

Why generated, not downloaded: the demo and tests need clips whose content is known
(moving street, quiet noisy night scene, H.265 + AAC) and small enough to commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness.media import make_clip, probe  # noqa: E402

# name -> make_clip arguments. Sizes are kept small (total well under 6 MB).
SAMPLES: dict[str, dict] = {
    # A busy street: panning texture, moving blocks, on-screen clock. H.264, GOP 2 s.
    "street-h264.mp4": dict(seconds=20, codec="h264", width=640, height=360, fps=25, gop=50,
                            scene="moving", crf=26, maxrate_kbps=1200, seed=1),
    # A quiet night: nothing moves but sensor noise σ≈2 per frame (kept by tune=grain:
    # ~0.9 grey levels mean frame difference, like a real noisy static camera) and the clock.
    "quiet-night-h264.mp4": dict(seconds=20, codec="h264", width=640, height=360, fps=25, gop=50,
                                 scene="static-noise", crf=25, tune="grain", maxrate_kbps=1000, seed=2),
    # A plaza camera that sends H.265 video with AAC audio.
    "plaza-h265-aac.mp4": dict(seconds=20, codec="hevc", width=640, height=360, fps=25, gop=50,
                               scene="moving", audio=True, crf=28, maxrate_kbps=900, seed=3),
    # A small gate camera, 15 fps, short GOP: the live camera the demo freezes on a schedule.
    "gate-h264.mp4": dict(seconds=10, codec="h264", width=320, height=240, fps=15, gop=15,
                          scene="moving", crf=26, maxrate_kbps=600, seed=4),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    total = 0
    for name, kw in SAMPLES.items():
        path = args.out / name
        info = make_clip(path, **kw)
        p = probe(path)
        assert p.frames == info.frames, (name, p.frames, info.frames)
        assert p.keyframes == list(range(0, info.frames, info.gop)), (name, p.keyframes)
        size = path.stat().st_size
        total += size
        print(f"{name}: {p.video_codec}{'+' + p.audio_codec if p.audio_codec else ''} "
              f"{p.width}x{p.height} {p.frames} frames {p.duration_s:.1f}s {size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
