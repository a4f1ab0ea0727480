"""Test clips made with PyAV: exact frame counts, fixed GOPs, known content.

Why: recorder/health tests need media whose properties are known *by construction*
(frame count, keyframe positions, codec, moving vs. static-with-noise), not clips
downloaded from somewhere. Everything here is deterministic (seeded RNG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from camserver.pictures import draw_text, smooth_noise, textured_background

Codec = Literal["h264", "hevc"]
Scene = Literal["moving", "static-noise"]

_ENCODERS = {"h264": "libx264", "hevc": "libx265"}


@dataclass(frozen=True)
class ClipInfo:
    """What make_clip wrote (by construction, see probe() for what a file contains)."""

    path: Path
    frames: int
    duration_s: float
    fps: int
    gop: int
    codec: str
    width: int
    height: int
    audio: bool
    scene: str


@dataclass(frozen=True)
class ProbeInfo:
    """What a file contains, read back with PyAV (demux, optionally decode)."""

    frames: int
    keyframes: list[int]
    duration_s: float
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    fps: float | None
    decoded_frames: int | None = None
    stream_types: list[str] = field(default_factory=list)


class SceneGenerator:
    """Produces I420 frames (shape (h*3/2, w), uint8) for a scene, frame by frame."""

    def __init__(self, width: int, height: int, fps: int, scene: Scene, *, clock: bool = True, seed: int = 1):
        if width % 2 or height % 2:
            raise ValueError("width and height must be even for yuv420p")
        self.w, self.h, self.fps, self.scene, self.clock = width, height, fps, scene, clock
        self.rng = np.random.default_rng(seed + 1000)
        self.bg = textured_background(width, height, seed)
        self.objects = [
            # (y, height, width, speed px/frame, luma)
            (height // 2, height // 6, width // 6, 3, 200),
            (height * 2 // 3, height // 8, width // 8, -5, 60),
            (height // 4, height // 10, width // 10, 7, 180),
        ]
        self.chroma_u = np.full((height // 2, width // 2), 128, np.uint8)
        self.chroma_v = np.full((height // 2, width // 2), 128, np.uint8)
        # gentle chroma texture so the picture is not greyscale
        cu = smooth_noise(np.random.default_rng(seed + 7), height // 2, width // 2, 24)
        cv = smooth_noise(np.random.default_rng(seed + 8), height // 2, width // 2, 24)
        self.bg_u = (108 + cu * 40).astype(np.uint8)
        self.bg_v = (108 + cv * 40).astype(np.uint8)
        # two copies side by side, so the pan wraps around without a jump
        self.bg_pan, self.bg_pan_u, self.bg_pan_v = (
            np.concatenate([a, a], axis=1) for a in (self.bg, self.bg_u, self.bg_v)
        )

    def frame(self, i: int) -> np.ndarray:
        w, h = self.w, self.h
        out = np.empty((h * 3 // 2, w), np.uint8)  # the layout av's from_ndarray wants
        flat = out.reshape(-1)
        ys, cs = w * h, (w // 2) * (h // 2)
        y = flat[:ys].reshape(h, w)
        u = flat[ys : ys + cs].reshape(h // 2, w // 2)
        v = flat[ys + cs :].reshape(h // 2, w // 2)
        if self.scene == "moving":
            off = (i * 2) % w  # pan 2 px per frame, even so chroma stays aligned
            y[:] = self.bg_pan[:, off : off + w]
            u[:] = self.bg_pan_u[:, off // 2 : off // 2 + w // 2]
            v[:] = self.bg_pan_v[:, off // 2 : off // 2 + w // 2]
            for k, (oy, oh, ow, speed, luma) in enumerate(self.objects):
                ox = (i * speed + k * w // 3) % (w + ow) - ow
                x0, x1 = max(0, ox), min(w, ox + ow)
                if x1 > x0:
                    y[oy : oy + oh, x0:x1] = luma
                    y[oy + oh // 3 : oy + oh // 3 + 2, x0:x1] = 255 - luma
        elif self.scene == "static-noise":
            noise = self.rng.normal(0.0, 2.0, (h, w)).astype(np.float32)
            y[:] = np.clip(self.bg.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
            u[:] = self.bg_u
            v[:] = self.bg_v
        else:
            raise ValueError(f"unknown scene {self.scene!r}")
        if self.clock:
            secs, ff = divmod(i, self.fps)
            mm, ss = divmod(secs, 60)
            text = f"{mm // 60:02d}:{mm % 60:02d}:{ss:02d}.{ff:02d}"
            scale = max(1, h // 180)
            draw_text(y, text, 4, 4, scale)
        return out


def make_clip(
    path: str | Path,
    seconds: float,
    *,
    codec: Codec = "h264",
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    gop: int = 50,
    audio: bool = False,
    scene: Scene = "moving",
    bframes: int = 0,
    clock: bool = True,
    crf: int = 26,
    maxrate_kbps: int | None = None,
    tune: str | None = None,
    seed: int = 1,
) -> ClipInfo:
    """Write an MP4 with exactly round(seconds*fps) frames and a keyframe every `gop` frames.

    Scene-cut keyframes are disabled and the GOP is closed, so keyframe positions are
    0, gop, 2*gop, ... exactly. `audio=True` adds a mono AAC 440 Hz tone for the same length.
    `tune="grain"` (H.264) keeps sensor noise in the stream instead of smoothing it away.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(seconds * fps))
    gen = SceneGenerator(width, height, fps, scene, clock=clock, seed=seed)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream(_ENCODERS[codec], rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = Fraction(1, fps)
        vbv = f":vbv-maxrate={maxrate_kbps}:vbv-bufsize={maxrate_kbps * 2}" if maxrate_kbps else ""
        if codec == "h264":
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:open-gop=0{vbv}"
            vs.options = {"x264-params": params, "crf": str(crf), "preset": "veryfast"}
            if tune:
                vs.options = {**vs.options, "tune": tune}
        else:
            params = (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:open-gop=0"
                f":log-level=error:crf={crf}{vbv}"
            )
            vs.options = {"x265-params": params, "preset": "veryfast", **({"tune": tune} if tune else {})}
        vs.codec_context.gop_size = gop
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=48000, layout="mono")
            as_.bit_rate = 64000
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(gen.frame(i), format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if as_ is not None:
            rate, chunk = 48000, 1024
            total = int(round(n_frames / fps * rate))
            t = np.arange(total, dtype=np.float32) / rate
            tone = (0.2 * np.sin(2 * math.pi * 440.0 * t)).astype(np.float32)
            for start in range(0, total, chunk):
                samples = tone[start : start + chunk]
                af = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
                af.sample_rate = rate
                af.pts = start
                af.time_base = Fraction(1, rate)
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode(None):
                out.mux(pkt)
    return ClipInfo(
        path=path,
        frames=n_frames,
        duration_s=n_frames / fps,
        fps=fps,
        gop=gop,
        codec=codec,
        width=width,
        height=height,
        audio=audio,
        scene=scene,
    )


def probe(path: str | Path, *, decode: bool = False) -> ProbeInfo:
    """Read a media file back: video frame count, keyframe indices (decode order), duration, codecs.

    Counting demuxed packets is exact for these clips (one frame per packet); `decode=True`
    also decodes every frame and reports how many decoded, to catch broken streams.
    """
    with av.open(str(path)) as inp:
        vs = inp.streams.video[0]
        audio = inp.streams.audio[0] if inp.streams.audio else None
        keyframes: list[int] = []
        n = 0
        first_pts = last_pts = None
        last_dur = 0
        decoded = 0 if decode else None
        for pkt in inp.demux(vs):
            if pkt.size == 0 and pkt.pts is None:
                continue  # flush packet
            if pkt.is_keyframe:
                keyframes.append(n)
            if pkt.pts is not None:
                first_pts = pkt.pts if first_pts is None else min(first_pts, pkt.pts)
                if last_pts is None or pkt.pts >= last_pts:
                    last_pts, last_dur = pkt.pts, pkt.duration or 0
            n += 1
            if decode:
                decoded += len(vs.codec_context.decode(pkt))  # type: ignore[operator]
        if decode:
            decoded += len(vs.codec_context.decode(None))  # type: ignore[operator]
        if first_pts is not None and last_pts is not None and vs.time_base:
            duration = float((last_pts + last_dur - first_pts) * vs.time_base)
        else:
            duration = float(inp.duration or 0) / av.time_base
        rate = vs.average_rate
        return ProbeInfo(
            frames=n,
            keyframes=keyframes,
            duration_s=duration,
            video_codec=vs.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            fps=float(rate) if rate else None,
            decoded_frames=decoded,
            stream_types=[s.type for s in inp.streams],
        )
