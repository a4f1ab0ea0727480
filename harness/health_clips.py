"""Clips for the health sampler, made with PyAV: each fault is known by construction.

Why: the thresholds in ingest/health are chosen from measurements on pictures whose truth is known
(moving, a quiet scene with sensor noise, frozen, black, blurred), and the monitor tests replay the
same pictures through the real decoder. One generator serves both (bench/health_thresholds.py
imports it), so the table in docs/design/health.md can be reproduced. Deterministic (seeded RNG).

A clip is a *script*: a list of `Part(scene, seconds)` encoded as one continuous stream, so a
freeze in the middle of a clip is what an encoder really sees when a camera's picture stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from camserver.pictures import draw_text

__all__ = ["SCENES", "ClipSpec", "Part", "Scene", "ScriptedScene", "draw_clock", "make_health_clip"]

Scene = Literal["moving", "static-noise", "frozen", "frozen-noisy", "black", "blurred", "dim"]
SCENES: tuple[Scene, ...] = ("moving", "static-noise", "frozen", "frozen-noisy", "black", "blurred", "dim")

NOISE_SIGMA = 2.0  # grey levels: sensor noise of a quiet street at night (the hard case)

def draw_clock(y: np.ndarray, frame_index: int, fps: int) -> None:
    """Burn an `HH:MM:SS.ff` clock into the top-left corner of a luma plane, as a camera's OSD does."""
    secs, ff = divmod(frame_index, fps)
    mm, ss = divmod(secs, 60)
    text = f"{mm // 60:02d}:{mm % 60:02d}:{ss:02d}.{ff:02d}"
    draw_text(y, text, 4, 4, max(1, y.shape[0] // 180))


def _value_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    grid = rng.random((h // cell + 2, w // cell + 2), dtype=np.float32)
    return cv2.resize(grid, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_LINEAR)[
        cell : cell + h, cell : cell + w
    ]


def _street(width: int, height: int, seed: int) -> np.ndarray:
    """A detailed grey 'street': texture at several scales plus hard-edged blocks with windows."""
    rng = np.random.default_rng(seed)
    img = 0.5 * _value_noise(rng, height, width, max(4, width // 27))
    img += 0.3 * _value_noise(rng, height, width, max(2, width // 107))
    img += 0.2 * _value_noise(rng, height, width, 2)
    img = 40 + img * 170
    for _ in range(14):
        bw = int(rng.integers(width // 20, width // 6))
        bh = int(rng.integers(height // 10, height // 3))
        bx, by = int(rng.integers(0, width - bw)), int(rng.integers(0, height - bh))
        img[by : by + bh, bx : bx + bw] = rng.integers(30, 220)
        step = max(3, width // 200)
        img[by + 2 : by + bh - 2 : 2 * step, bx + 2 : bx + bw - 2 : 2 * step] = 230
    return np.clip(img, 16, 235).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Part:
    scene: Scene
    seconds: float


@dataclass(frozen=True, slots=True)
class ClipSpec:
    width: int = 320
    height: int = 240
    fps: int = 25
    gop: int = 50
    codec: Literal["h264", "hevc"] = "h264"
    crf: int = 26
    maxrate_kbps: int | None = None  # VBV cap on top of CRF (a capped-VBR camera)
    bitrate_kbps: int | None = None  # constant bitrate instead of CRF (what most cameras are set to)
    bframes: int = 0
    tune: str | None = None  # e.g. "zerolatency", as GStreamer's x264enc in live pipelines
    extra_params: str = ""  # more x264/x265 params, e.g. "qpmin=20" (a camera-like QP floor)
    clock: bool = True
    seed: int = 1


class ScriptedScene:
    """I420 frames for a script of scenes; `frozen*` parts repeat the picture the previous part ended on.

    - moving: the street pans 2 px/frame and three blocks cross it (cars);
    - static-noise: the street still, fresh Gaussian noise (σ = NOISE_SIGMA) on every frame;
    - frozen: the last picture repeats exactly (before the OSD), the OSD clock keeps ticking;
    - frozen-noisy: one noisy still picture repeats exactly, noise included, no OSD: only codec noise
      separates its keyframes;
    - black: a covered lens: luma 18 plus sensor noise, OSD still ticking;
    - blurred: the moving street through a defocused lens (Gaussian σ = width/100), sensor noise and
      OSD added after the blur, as they are in a camera;
    - dim: the still street at night, luma squeezed into 16..60, with sensor noise (must stay online).
    """

    def __init__(self, spec: ClipSpec) -> None:
        if spec.width % 2 or spec.height % 2:
            raise ValueError("width and height must be even for yuv420p")
        self.spec = spec
        w, h = spec.width, spec.height
        self.rng = np.random.default_rng(spec.seed + 1000)
        self.street = _street(2 * w, h, spec.seed)
        crng = np.random.default_rng(spec.seed + 7)
        self.u = (108 + 40 * _value_noise(crng, h // 2, w, max(4, w // 13))).astype(np.uint8)
        self.v = (108 + 40 * _value_noise(crng, h // 2, w, max(4, w // 13))).astype(np.uint8)
        self.cars = [
            (h // 2, h // 6, w // 6, 3, 200.0),
            (h * 2 // 3, h // 8, w // 8, -5, 60.0),
            (h // 4, h // 10, w // 10, 7, 180.0),
        ]
        self.blur_sigma = w / 100
        self._last_y = self.street[:, :w].astype(np.uint8)
        self._last_uv: tuple[np.ndarray, np.ndarray] = (self.u[:, : w // 2], self.v[:, : w // 2])
        self._frozen: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _noise(self) -> np.ndarray:
        return self.rng.standard_normal((self.spec.height, self.spec.width), dtype=np.float32) * NOISE_SIGMA

    def _moving(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.spec.width
        off = (2 * i) % w
        y = self.street[:, off : off + w].copy()
        for k, (oy, oh, ow, speed, luma) in enumerate(self.cars):
            ox = (i * speed + k * w // 3) % (w + ow) - ow
            x0, x1 = max(0, ox), min(w, ox + ow)
            if x1 > x0:
                y[oy : oy + oh, x0:x1] = luma
                y[oy + oh // 3 : oy + oh // 3 + 2, x0:x1] = 255 - luma
        return y, self.u[:, off // 2 : off // 2 + w // 2], self.v[:, off // 2 : off // 2 + w // 2]

    def frame(self, i: int, scene: Scene, first_of_part: bool) -> np.ndarray:
        """Frame `i` of the clip (the clock counts from the clip's start) showing `scene`."""
        sp = self.spec
        w, h = sp.width, sp.height
        clock = sp.clock
        if scene in ("frozen", "frozen-noisy"):
            if first_of_part or self._frozen is None:
                if scene == "frozen-noisy":
                    y0 = np.clip(self.street[:, :w] + self._noise(), 0, 255).astype(np.uint8)
                    self._frozen = (y0, self.u[:, : w // 2], self.v[:, : w // 2])
                else:
                    self._frozen = (self._last_y.copy(), *self._last_uv)
            y, u, v = (a.copy() for a in self._frozen)
            clock = clock and scene == "frozen"
        else:
            self._frozen = None
            if scene == "moving":
                yf, u, v = self._moving(i)
            elif scene == "static-noise":
                yf, u, v = self.street[:, :w] + self._noise(), self.u[:, : w // 2], self.v[:, : w // 2]
            elif scene == "black":
                yf = 18 + self._noise()
                u = v = np.full((h // 2, w // 2), 128, np.uint8)
            elif scene == "blurred":
                ym, u, v = self._moving(i)
                yf = cv2.GaussianBlur(ym, (0, 0), self.blur_sigma) + self._noise()
                u = cv2.GaussianBlur(u, (0, 0), self.blur_sigma / 2)
                v = cv2.GaussianBlur(v, (0, 0), self.blur_sigma / 2)
            elif scene == "dim":
                yf = 16 + (self.street[:, :w] - 16) * (44 / 219) + self._noise()
                u, v = self.u[:, : w // 2], self.v[:, : w // 2]
            else:
                raise ValueError(f"unknown scene {scene!r}")
            y = np.clip(yf, 0, 255).astype(np.uint8)
            self._last_y, self._last_uv = y.copy(), (u, v)
        if clock:
            draw_clock(y, i, sp.fps)
        out = np.empty((h * 3 // 2, w), np.uint8)
        out[:h] = y
        out[h : h + h // 4] = np.ascontiguousarray(u).reshape(h // 4, w)
        out[h + h // 4 :] = np.ascontiguousarray(v).reshape(h // 4, w)
        return out


def make_health_clip(path: str | Path, script: list[Part], spec: ClipSpec = ClipSpec()) -> Path:
    """Encode `script` into an MP4 at `path`: keyframes exactly every `spec.gop` frames (no scene cuts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = ScriptedScene(spec)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264" if spec.codec == "h264" else "libx265", rate=spec.fps)
        vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, "yuv420p"
        vs.time_base = Fraction(1, spec.fps)
        vbv = f":vbv-maxrate={spec.maxrate_kbps}:vbv-bufsize={spec.maxrate_kbps * 2}" if spec.maxrate_kbps else ""
        rate = f"crf={spec.crf}"
        if spec.bitrate_kbps:  # CBR as cameras do it: ABR held by a one-second VBV, no filler data
            rate = f"bitrate={spec.bitrate_kbps}"
            vbv = f":vbv-maxrate={spec.bitrate_kbps}:vbv-bufsize={spec.bitrate_kbps}"
        gop = f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0:bframes={spec.bframes}:open-gop=0"
        if spec.extra_params:
            gop += ":" + spec.extra_params
        if spec.codec == "h264":
            vs.options = {"x264-params": f"{gop}:{rate}{vbv}", "preset": "veryfast"}
        else:
            vs.options = {"x265-params": f"{gop}:log-level=error:{rate}{vbv}", "preset": "veryfast"}
        if spec.tune:
            vs.options = {**vs.options, "tune": spec.tune}
        vs.codec_context.gop_size = spec.gop
        i = 0
        for part in script:
            for k in range(round(part.seconds * spec.fps)):
                frame = av.VideoFrame.from_ndarray(gen.frame(i, part.scene, k == 0), format="yuv420p")
                frame.pts = i
                frame.time_base = Fraction(1, spec.fps)
                for pkt in vs.encode(frame):
                    out.mux(pkt)
                i += 1
        for pkt in vs.encode(None):
            out.mux(pkt)
    return path
