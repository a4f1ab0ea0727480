#!/usr/bin/python3
"""Standalone RTSP camera server for tests and the demo (GStreamer RTSP server, system Python).

Why it exists: vigil must be tested against a *real* RTSP server that behaves like
cameras do — files served as-is (H.264/H.265 + AAC), live cameras that never end, and
cameras whose picture freezes, goes black or blurs while the stream keeps flowing. This
script is run with /usr/bin/python3 (which has `gi`); it imports nothing from vigil or
the venv. numpy comes from Debian's python3-numpy.

Usage:
  camserver.py --port 8554 \
      --mount /street=file:/clips/street.mp4 \
      --mount /loop=loop:/clips/street.mp4?gop=25 \
      --mount /cam=synthetic:?w=320&h=240&fps=25&gop=50&scene=moving \
      --schedule /cam=freeze:20:10 [--auth user:pass]

Mount specs:
  file:PATH           serve the MP4 without transcoding, each client from the start, EOS at end
  loop:PATH?gop=&fps=&qp=&clock=
                      live camera looping the decoded clip forever (x264 re-encode)
  synthetic:?w=&h=&fps=&gop=&qp=&scene=moving|static-noise&clock=&seed=
                      generated live scene
  clock:?w=&h=&fps=&gop=&qp=
                      a live camera whose every frame carries the wall clock as a row of
                      black/white cells (milliseconds since the epoch mod 2^24, see ClockCamera),
                      stamped when pushed (appsrc do-timestamp=true): glass-to-glass latency tests
  clock = on (drawn into the picture, freezes with it), overlay (drawn after the fault,
          keeps ticking over a frozen picture, like a DVR overlay) or off.
          Default: on for synthetic, off for loop.

Control (stdin, one command per line; answers on stdout):
  MODE /path normal|freeze|black|blur|noise-freeze   ->  OK /path MODE   (after it is applied)
  PING                                               ->  PONG
  errors                                             ->  ERR <message>
Stdout also carries `READY <port>` once listening. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

# One BLAS thread: our matrices are small, and OpenBLAS worker threads would spin on the CPU.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstPbutils", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtspServer, GstVideo  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: camserver/ importable
from camserver.pictures import draw_text, smooth_noise, textured_background  # noqa: E402

MODES = ("normal", "freeze", "black", "blur", "noise-freeze")
NOISE_VARIANTS = 50
NOISE_SIGMA = 2.0

_out_lock = threading.Lock()


def log(msg: str) -> None:
    sys.stderr.write(f"camserver: {msg}\n")
    sys.stderr.flush()


def say(line: str) -> None:
    """Write one protocol line to stdout (flushed, serialized across threads)."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- picture helpers


def draw_clock(y_plane: np.ndarray, scale: int) -> None:
    """Wall-clock HH:MM:SS in the top-left corner, in place (white on a black box)."""
    draw_text(y_plane, time.strftime("%H:%M:%S"), 0, 0, scale)


class Blur:
    """Heavy blur: box-average down by 16, bilinear back up. No BLAS (Debian's numpy may use
    the slow reference BLAS): reduceat for the averages, gathers for the interpolation."""

    def __init__(self, w: int, h: int, factor: int = 16):
        self.w, self.h = w, h
        self.plans = [(self._axis(h, factor), self._axis(w, factor))]
        self.plans.append((self._axis(h // 2, factor // 2), self._axis(w // 2, factor // 2)))

    @staticmethod
    def _axis(n: int, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        m = max(1, n // f)
        starts = (np.arange(m) * n) // m
        counts = np.diff(np.append(starts, n)).astype(np.float32)
        pos = np.clip((np.arange(n, dtype=np.float32) + 0.5) * m / n - 0.5, 0, m - 1)
        i0 = np.floor(pos).astype(np.intp)
        i1 = np.minimum(i0 + 1, m - 1)
        return starts, counts, i0, i1, (pos - i0).astype(np.float32)

    @staticmethod
    def _plane(src: np.ndarray, dst: np.ndarray, plan) -> None:
        (ys, yc, yi0, yi1, yf), (xs, xc, xi0, xi1, xf) = plan
        sums = np.add.reduceat(np.add.reduceat(src, ys, axis=0, dtype=np.uint32), xs, axis=1)
        small = sums.astype(np.float32) / (yc[:, None] * xc[None, :])
        rows = small[yi0] * (1 - yf)[:, None] + small[yi1] * yf[:, None]
        out = rows[:, xi0] * (1 - xf) + rows[:, xi1] * xf
        out += 0.5
        dst[:] = out  # values stay within 0..255: averages and their interpolation

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = np.empty_like(frame)
        src_planes = split_i420(frame, self.w, self.h)
        dst_planes = split_i420(out, self.w, self.h)
        for i in range(3):
            self._plane(src_planes[i], dst_planes[i], self.plans[0 if i == 0 else 1])
        return out


def split_i420(frame: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U, V planes of a packed I420 frame (shape (h*3/2, w))."""
    flat = frame.reshape(-1)
    ys = w * h
    cs = (w // 2) * (h // 2)
    return (
        flat[:ys].reshape(h, w),
        flat[ys : ys + cs].reshape(h // 2, w // 2),
        flat[ys + cs : ys + 2 * cs].reshape(h // 2, w // 2),
    )


def black_frame(w: int, h: int) -> np.ndarray:
    f = np.empty((h * 3 // 2, w), np.uint8)
    y, u, v = split_i420(f, w, h)
    y[:] = 16
    u[:] = 128
    v[:] = 128
    return f


# ---------------------------------------------------------------- frame sources


class SyntheticSource:
    """Generated scene. `moving`: panning texture with moving blocks. `static-noise`: a fixed
    textured picture with fresh Gaussian noise (σ≈2) per frame, from pre-generated variants."""

    def __init__(self, w: int, h: int, scene: str, seed: int = 1):
        if scene not in ("moving", "static-noise"):
            raise ValueError(f"unknown scene {scene!r}")
        self.w, self.h, self.scene = w, h, scene
        self.bg = textured_background(w, h, seed)
        crng = np.random.default_rng(seed + 7)
        self.bg_u = (108 + smooth_noise(crng, h // 2, w // 2, 24) * 40).astype(np.uint8)
        self.bg_v = (108 + smooth_noise(crng, h // 2, w // 2, 24) * 40).astype(np.uint8)
        if scene == "moving":  # two copies side by side: panning wraps around seamlessly
            self.bg, self.bg_u, self.bg_v = (np.concatenate([a, a], axis=1) for a in (self.bg, self.bg_u, self.bg_v))
        self.objects = [
            (h // 2, h // 6, w // 6, 3, 200),
            (h * 2 // 3, h // 8, w // 8, -5, 60),
            (h // 4, h // 10, w // 10, 7, 180),
        ]
        if scene == "static-noise":
            # Sensor noise never repeats: each frame takes a window at a random offset of one
            # larger noise bank (64×64 offsets), so no two frames — and no two keyframes — are equal.
            rng = np.random.default_rng(seed + 99)
            self.base_y = self.bg[:, :w].astype(np.int16)
            self.bank = np.round(rng.normal(0, NOISE_SIGMA, (h + 64, w + 64))).astype(np.int16)
            self.offsets = np.random.default_rng(seed + 7)

    def frame(self, tick: int) -> np.ndarray:
        """Frame for `tick`; callers may modify it (always a fresh array)."""
        if self.scene == "static-noise":
            w, h = self.w, self.h
            out = np.empty((h * 3 // 2, w), np.uint8)
            y, u, v = split_i420(out, w, h)
            dy, dx = (int(x) for x in self.offsets.integers(0, 64, 2))
            np.clip(self.base_y + self.bank[dy : dy + h, dx : dx + w], 0, 255, out=y, casting="unsafe")
            u[:] = self.bg_u[:, : w // 2]
            v[:] = self.bg_v[:, : w // 2]
            return out
        w, h = self.w, self.h
        out = np.empty((h * 3 // 2, w), np.uint8)
        y, u, v = split_i420(out, w, h)
        off = (tick * 2) % w
        y[:] = self.bg[:, off : off + w]
        u[:] = self.bg_u[:, off // 2 : off // 2 + w // 2]
        v[:] = self.bg_v[:, off // 2 : off // 2 + w // 2]
        for k, (oy, oh, ow, speed, luma) in enumerate(self.objects):
            ox = (tick * speed + k * w // 3) % (w + ow) - ow
            x0, x1 = max(0, ox), min(w, ox + ow)
            if x1 > x0:
                y[oy : oy + oh, x0:x1] = luma
                y[oy + oh // 3 : oy + oh // 3 + 2, x0:x1] = 255 - luma
        return out


_DECODED: dict[str, tuple[list[np.ndarray], int, int, float]] = {}


class LoopSource:
    """A clip decoded once into memory (raw I420), replayed forever. Mounts of the same clip
    share the decoded frames (~345 kB per 640x360 frame, so ~170 MB per 20 s clip)."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        key = os.path.realpath(path)
        if key not in _DECODED:
            _DECODED[key] = decode_clip(path)
        self.frames, self.w, self.h, self.fps = _DECODED[key]
        if not self.frames:
            raise RuntimeError(f"no frames decoded from {path}")

    def frame(self, tick: int) -> np.ndarray:
        return self.frames[tick % len(self.frames)].copy()


def decode_clip(path: str) -> tuple[list[np.ndarray], int, int, float]:
    """Decode every video frame of `path` to packed I420 numpy arrays (width rounded to /8)."""
    pipe = Gst.parse_launch(
        f'filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! '
        "video/x-raw,format=I420 ! appsink name=sink sync=false max-buffers=8"
    )
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PAUSED)
    pipe.get_state(10 * Gst.SECOND)
    caps = sink.get_static_pad("sink").get_current_caps()
    s = caps.get_structure(0)
    w0, h0 = s.get_value("width"), s.get_value("height")
    ok, num, den = s.get_fraction("framerate")
    fps = num / den if ok and num > 0 and den > 0 else 25.0
    w, h = w0 - w0 % 8, h0 - h0 % 2
    if (w, h) != (w0, h0):
        # Re-run with a scaled size so the packed layout matches GStreamer's default strides.
        pipe.set_state(Gst.State.NULL)
        pipe = Gst.parse_launch(
            f'filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! '
            f"video/x-raw,format=I420,width={w},height={h} ! appsink name=sink sync=false max-buffers=8"
        )
        sink = pipe.get_by_name("sink")
        caps = None
    pipe.set_state(Gst.State.PLAYING)
    frames: list[np.ndarray] = []
    vinfo = None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        if vinfo is None:
            vinfo = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        buf = sample.get_buffer()
        ok, mi = buf.map(Gst.MapFlags.READ)
        if not ok:
            continue
        try:
            data = np.frombuffer(mi.data, np.uint8)
            f = np.empty((h * 3 // 2, w), np.uint8)
            planes = split_i420(f, w, h)
            for idx, plane in enumerate(planes):
                stride, off = vinfo.stride[idx], vinfo.offset[idx]
                ph, pw = plane.shape
                plane[:] = np.lib.stride_tricks.as_strided(data[off:], shape=(ph, pw), strides=(stride, 1))
            frames.append(f)
        finally:
            buf.unmap(mi)
    pipe.set_state(Gst.State.NULL)
    return frames, w, h, fps


# ---------------------------------------------------------------- live camera


@dataclass
class Schedule:
    mode: str
    period: float
    duration: float


@dataclass
class LiveCamera:
    """One live mount: a tick thread producing frames at `fps`, applying the picture mode,
    and pushing into whichever appsrc(s) the RTSP media currently has."""

    path: str
    source: object
    w: int
    h: int
    fps: float
    gop: int
    qp: int
    clock: str  # on | overlay | off
    schedules: list[Schedule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.mode = "normal"
        self.pending: list[tuple[str, threading.Event]] = []
        self.appsrcs: dict[int, dict] = {}
        self.last_out: np.ndarray | None = None
        self.frozen: np.ndarray | None = None
        self.noise_i = 0
        self.blur = Blur(self.w, self.h)
        self.black = black_frame(self.w, self.h)
        self._noise: np.ndarray | None = None
        self._offsets: list[tuple[int, int]] = []
        self.noise(0)  # pre-generate now, not in the middle of a mode change
        self.scale = max(1, self.h // 120)
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()
        self.sched_active = [False] * len(self.schedules)
        self.thread = threading.Thread(target=self._run, name=f"cam{self.path}", daemon=True)

    # -- picture

    def noise(self, k: int) -> np.ndarray:
        """Noise field number k (int16, σ≈2): windows of one pre-generated bank at shifted
        offsets, so each frame gets fresh-looking noise without storing 50 full fields."""
        if self._noise is None:
            rng = np.random.default_rng(12345)
            self._noise = np.round(rng.normal(0, NOISE_SIGMA, (self.h + 16, self.w + 16))).astype(np.int16)
            self._offsets = [(int(a), int(b)) for a, b in rng.integers(0, 16, (NOISE_VARIANTS, 2))]
        dy, dx = self._offsets[k % NOISE_VARIANTS]
        return self._noise[dy : dy + self.h, dx : dx + self.w]

    def live_frame(self, tick: int) -> np.ndarray:
        f = self.source.frame(tick)  # type: ignore[attr-defined]
        if self.clock == "on":
            draw_clock(split_i420(f, self.w, self.h)[0], self.scale)
        return f

    def render(self, tick: int) -> np.ndarray:
        mode = self.mode
        if mode == "normal":
            out = self.live_frame(tick)
        elif mode == "blur":
            out = self.blur(self.live_frame(tick))
        elif mode == "black":
            out = self.black.copy() if self.clock == "overlay" else self.black
        elif mode == "freeze":
            assert self.frozen is not None
            out = self.frozen.copy() if self.clock == "overlay" else self.frozen
        elif mode == "noise-freeze":
            assert self.frozen is not None
            out = self.frozen.copy()
            y = split_i420(out, self.w, self.h)[0]
            base = split_i420(self.frozen, self.w, self.h)[0]
            n = self.noise(self.noise_i)
            self.noise_i += 1
            y[:] = np.clip(base.astype(np.int16) + n, 0, 255)
        else:  # pragma: no cover
            raise ValueError(mode)
        if self.clock == "overlay":
            draw_clock(split_i420(out, self.w, self.h)[0], self.scale)
        return out

    def set_mode(self, mode: str, tick: int) -> None:
        """Apply a mode at `tick`; freezes capture the last frame shown."""
        if mode in ("freeze", "noise-freeze") and mode != self.mode:
            if mode == "noise-freeze" and self.mode == "freeze":
                pass  # same frozen picture, now under sensor noise
            else:
                last = self.last_out if self.last_out is not None else self.render(tick)
                self.frozen = last.copy()
            self.noise_i = 0
        self.mode = mode

    # -- control

    def request_mode(self, mode: str) -> threading.Event:
        ev = threading.Event()
        with self.lock:
            self.pending.append((mode, ev))
        return ev

    def attach(self, appsrc: Gst.Element) -> None:
        with self.lock:
            self.appsrcs[id(appsrc)] = {"src": appsrc, "base": None}

    def detach(self, appsrc: Gst.Element) -> None:
        with self.lock:
            self.appsrcs.pop(id(appsrc), None)

    # -- tick thread

    def _run(self) -> None:
        dur = 1.0 / self.fps
        dur_ns = int(round(Gst.SECOND / self.fps))
        t0 = time.monotonic()
        tick = 0
        while not self.stop_ev.is_set():
            due = t0 + tick * dur
            now = time.monotonic()
            if due > now:
                if self.stop_ev.wait(due - now):
                    break
            elif now - due > 0.5:
                # We were stalled (SIGSTOP, CPU starvation): skip the missed ticks, as a
                # camera's capture clock keeps running; do not burst old frames.
                tick = int((now - t0) / dur)
            self._apply_schedule(now)
            with self.lock:
                pending, self.pending = self.pending, []
                targets = list(self.appsrcs.values())
            for mode, _ in pending:
                self.set_mode(mode, tick)
            if targets or pending:
                out = self.render(tick)
                self.last_out = out
                for t in targets:
                    self._push(t, out, tick, dur_ns)
            else:
                self.last_out = None  # nobody watching: do not spend CPU on pictures
            for _, ev in pending:
                ev.set()
            tick += 1

    def _apply_schedule(self, now: float) -> None:
        elapsed = now - self.t0
        for i, s in enumerate(self.schedules):
            active = elapsed >= s.period and (elapsed % s.period) < s.duration
            if active != self.sched_active[i]:
                self.sched_active[i] = active
                new = s.mode if active else "normal"
                log(f"{self.path}: schedule -> {new}")
                with self.lock:
                    self.pending.append((new, threading.Event()))

    def _push(self, target: dict, frame: np.ndarray, tick: int, dur_ns: int) -> None:
        src = target["src"]
        clock = src.get_clock()
        if clock is None:
            return  # media not running yet: a live source drops frames nobody can see
        if target["base"] is None:
            running = clock.get_time() - src.get_base_time()
            target["base"] = (running, tick)
        base_running, base_tick = target["base"]
        buf = Gst.Buffer.new_wrapped(frame.tobytes())
        buf.pts = base_running + (tick - base_tick) * dur_ns
        buf.duration = dur_ns
        ret = src.emit("push-buffer", buf)
        if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING):
            log(f"{self.path}: push-buffer -> {ret.value_nick}")

    def launch(self) -> str:
        caps = f"video/x-raw,format=I420,width={self.w},height={self.h},framerate={_fraction(self.fps)}"
        return (
            f'( appsrc name=src is-live=true format=time do-timestamp=false caps="{caps}" '
            f"max-bytes={self.w * self.h * 3 // 2 * 10} leaky-type=downstream ! "
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.gop} "
            f"pass=quant quantizer={self.qp} threads=1 "
            f'option-string="scenecut=0:min-keyint={self.gop}" ! '
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )


def _fraction(fps: float) -> str:
    if abs(fps - round(fps)) < 1e-6:
        return f"{int(round(fps))}/1"
    return f"{int(round(fps * 1000))}/1000"


# ---------------------------------------------------------------- clock camera

CLOCK_BITS = 24  # ms since the epoch mod 2^24: wraps every 4.66 h, far above any latency
CLOCK_MARK = (1, 0)  # a white and a black cell before the bits: tells a code from a picture


def clock_cells(ms: int) -> list[int]:
    """The cell row for `ms`: the mark, the bits (most significant first), an even-parity cell."""
    v = ms % (1 << CLOCK_BITS)
    bits = [(v >> (CLOCK_BITS - 1 - i)) & 1 for i in range(CLOCK_BITS)]
    return [*CLOCK_MARK, *bits, sum(bits) & 1]


class ClockCamera:
    """A live camera whose frames carry the wall clock at the moment each one is made.

    The row of cells (`clock_cells`) sits at the top of the picture, `cell` pixels square (22 at
    640x360: 27 cells in 594 px), luma 16 or 235, so it survives H.264 at any sane QP and a browser
    reads it back by sampling each cell's centre from a canvas. A tick thread renders a frame with
    the time it is pushed, and appsrc stamps it on arrival (do-timestamp=true): what a real camera
    does, so the measured delay is the recorder's and the viewer's, not the test server's.
    Below the row: the clock as text for people, and a moving block so the picture is never frozen.
    """

    def __init__(self, path: str, w: int, h: int, fps: float, gop: int, qp: int) -> None:
        self.path, self.w, self.h, self.fps, self.gop, self.qp = path, w, h, fps, gop, qp
        self.cell = max(8, (w - 16) // (len(CLOCK_MARK) + CLOCK_BITS + 1))
        self.lock = threading.Lock()
        self.appsrcs: dict[int, Gst.Element] = {}
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()
        self.base = black_frame(w, h)
        y = split_i420(self.base, w, h)[0]
        y[:] = 90  # a mid grey: the cells stand out from it
        self.scale = max(1, h // 120)
        self.thread = threading.Thread(target=self._run, name=f"cam{path}", daemon=True)

    def render(self, tick: int, ms: int) -> np.ndarray:
        f = self.base.copy()
        y = split_i420(f, self.w, self.h)[0]
        c, top = self.cell, 8
        for i, bit in enumerate(clock_cells(ms)):
            y[top : top + c, 8 + i * c : 8 + (i + 1) * c] = 235 if bit else 16
        bw = self.w // 8
        x = (tick * 4) % (self.w - bw)
        y[self.h // 2 : self.h // 2 + self.h // 4, x : x + bw] = 200
        draw_clock(y[top + c + 8 :, :], self.scale)
        return f

    def attach(self, appsrc: Gst.Element) -> None:
        with self.lock:
            self.appsrcs[id(appsrc)] = appsrc

    def detach(self, appsrc: Gst.Element) -> None:
        with self.lock:
            self.appsrcs.pop(id(appsrc), None)

    def request_mode(self, mode: str) -> threading.Event:
        raise ValueError("a clock camera has no picture modes")

    def _run(self) -> None:
        dur = 1.0 / self.fps
        t0 = time.monotonic()
        tick = 0
        while not self.stop_ev.is_set():
            due = t0 + tick * dur
            now = time.monotonic()
            if due > now:
                if self.stop_ev.wait(due - now):
                    break
            elif now - due > 0.5:
                tick = int((now - t0) / dur)  # stalled: skip the missed ticks, never burst old frames
            with self.lock:
                targets = list(self.appsrcs.values())
            if targets:
                frame = self.render(tick, int(time.time() * 1000))
                data = frame.tobytes()
                for src in targets:
                    if src.get_clock() is None:
                        continue  # media not running yet
                    buf = Gst.Buffer.new_wrapped(data)
                    buf.duration = int(Gst.SECOND / self.fps)
                    ret = src.emit("push-buffer", buf)
                    if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING):
                        log(f"{self.path}: push-buffer -> {ret.value_nick}")
            tick += 1

    def launch(self) -> str:
        caps = f"video/x-raw,format=I420,width={self.w},height={self.h},framerate={_fraction(self.fps)}"
        return (
            f'( appsrc name=src is-live=true format=time do-timestamp=true caps="{caps}" '
            f"max-bytes={self.w * self.h * 3 // 2 * 4} leaky-type=downstream ! "
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.gop} "
            f"pass=quant quantizer={self.qp} threads=1 "
            f'option-string="scenecut=0:min-keyint={self.gop}" ! '
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )


def make_clock(path: str, spec: str) -> ClockCamera:
    _, opts = parse_query(spec.partition(":")[2])
    w, h = int(opts.get("w", 640)), int(opts.get("h", 360))
    if w % 8 or h % 2 or w < 240:
        raise ValueError("clock: w must be a multiple of 8 (at least 240) and h even")
    return ClockCamera(path, w, h, float(opts.get("fps", 25)), int(opts.get("gop", 25)), int(opts.get("qp", 23)))


# ---------------------------------------------------------------- file mounts


def file_launch(path: str) -> str:
    """Launch line serving an MP4 as-is: video (H.264/H.265) as pay0, AAC audio as pay1."""
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    disc = GstPbutils.Discoverer.new(10 * Gst.SECOND)
    info = disc.discover_uri(Gst.filename_to_uri(os.path.abspath(path)))
    videos = info.get_video_streams()
    if not videos:
        raise ValueError(f"{path}: no video stream")
    vcaps = videos[0].get_caps().to_string()
    if vcaps.startswith("video/x-h264"):
        vchain = "h264parse ! rtph264pay"
    elif vcaps.startswith("video/x-h265"):
        vchain = "h265parse ! rtph265pay"
    else:
        raise ValueError(f"{path}: unsupported video {vcaps.split(',')[0]}")
    loc = os.path.abspath(path).replace('"', '\\"')
    parts = [
        f'( filesrc location="{loc}" ! qtdemux name=d',
        f"d.video_0 ! queue ! {vchain} name=pay0 pt=96 config-interval=1",
    ]
    for a in info.get_audio_streams():
        acaps = a.get_caps().to_string()
        if acaps.startswith("audio/mpeg") and "mpegversion=(int)4" in acaps:
            parts.append("d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97")
        break
    return " ".join(parts) + " )"


# ---------------------------------------------------------------- server


def parse_query(spec: str) -> tuple[str, dict[str, str]]:
    base, _, q = spec.partition("?")
    return base, {k: v[-1] for k, v in urllib.parse.parse_qs(q).items()}


def make_live(path: str, spec: str, schedules: list[Schedule]) -> LiveCamera:
    kind, _, rest = spec.partition(":")
    target, opts = parse_query(rest)
    if kind == "synthetic":
        w, h = int(opts.get("w", 640)), int(opts.get("h", 360))
        if w % 8 or h % 2:
            raise ValueError("synthetic: w must be a multiple of 8 and h even")
        fps = float(opts.get("fps", 25))
        source: object = SyntheticSource(w, h, opts.get("scene", "moving"), seed=int(opts.get("seed", 1)))
        clock = opts.get("clock", "on")
    else:
        t = time.monotonic()
        src = LoopSource(target)
        log(f"{path}: decoded {len(src.frames)} frames {src.w}x{src.h} of {target} in {time.monotonic() - t:.2f}s")
        source, w, h = src, src.w, src.h
        fps = float(opts.get("fps", src.fps))
        clock = opts.get("clock", "off")
    if clock in ("1", "true", "yes"):
        clock = "on"
    if clock in ("0", "false", "no"):
        clock = "off"
    if clock not in ("on", "off", "overlay"):
        raise ValueError(f"clock must be on|off|overlay, not {clock!r}")
    gop = int(opts.get("gop", 50))
    # Constant QP: an unchanged picture encodes to ~16-byte skip frames and decodes to exactly
    # the same picture. With ABR/CRF x264 keeps spending bits re-refining a frozen picture,
    # so its decoded frames never become identical.
    qp = int(opts.get("qp", 21))
    return LiveCamera(path, source, w, h, fps, gop, qp, clock, schedules)


class CamServer:
    def __init__(self, port: int, mounts: list[tuple[str, str]], schedules: dict[str, list[Schedule]], auth: str | None):
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address("127.0.0.1")
        self.server.set_service(str(port))
        self.cameras: dict[str, LiveCamera] = {}
        self.factories: list[GstRtspServer.RTSPMediaFactory] = []
        mp = self.server.get_mount_points()
        for path, spec in mounts:
            factory = GstRtspServer.RTSPMediaFactory()
            if spec.startswith("file:"):
                factory.set_launch(file_launch(spec[len("file:") :]))
                factory.set_shared(False)
                factory.connect("media-configure", self._file_configure, path)
            elif spec.startswith("clock:"):
                clock_cam = make_clock(path, spec)
                self.cameras[path] = clock_cam  # type: ignore[assignment]
                factory.set_launch(clock_cam.launch())
                factory.set_shared(True)
                factory.connect("media-configure", self._live_configure, clock_cam)
            elif spec.startswith(("loop:", "synthetic:")):
                cam = make_live(path, spec, schedules.get(path, []))
                self.cameras[path] = cam
                factory.set_launch(cam.launch())
                factory.set_shared(True)
                factory.connect("media-configure", self._live_configure, cam)
            else:
                raise ValueError(f"bad mount spec {spec!r} (file:|loop:|synthetic:|clock:)")
            if auth:
                self._protect(factory)
            mp.add_factory(path, factory)
            self.factories.append(factory)
            log(f"mount {path} = {spec}")
        for path in schedules:
            if path not in self.cameras:
                raise ValueError(f"--schedule {path}: not a loop:/synthetic: mount")
        if auth:
            user, _, pw = auth.partition(":")
            a = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", "user")  # writable_structure() is a copy in PyGObject
            a.add_basic(GstRtspServer.RTSPAuth.make_basic(user, pw), token)
            self.server.set_auth(a)

    @staticmethod
    def _protect(factory: GstRtspServer.RTSPMediaFactory) -> None:
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(
            Gst.Structure.new_from_string("user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")
        )
        factory.set_permissions(perms)

    def _file_configure(self, factory, media, path: str) -> None:
        log(f"{path}: new client session (file, from the start)")

    def _live_configure(self, factory, media, cam: LiveCamera) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        cam.attach(appsrc)
        media.connect("unprepared", lambda m: cam.detach(appsrc))
        log(f"{cam.path}: live media configured")

    def start(self) -> int:
        if self.server.attach(None) == 0:
            raise OSError(f"cannot listen on 127.0.0.1:{self.server.get_service()}")
        for cam in self.cameras.values():
            cam.t0 = time.monotonic()
            cam.thread.start()
        return self.server.get_bound_port()

    def stop(self) -> None:
        for cam in self.cameras.values():
            cam.stop_ev.set()


def control_loop(server: CamServer) -> None:
    """Read line commands from stdin until EOF (EOF does not stop the server)."""
    for raw in sys.stdin:
        parts = raw.split()
        if not parts:
            continue
        cmd = parts[0].upper()
        try:
            if cmd == "PING":
                say("PONG")
            elif cmd == "MODE" and len(parts) == 3:
                path, mode = parts[1], parts[2]
                cam = server.cameras.get(path)
                if cam is None:
                    say(f"ERR {path} not a live mount")
                elif mode not in MODES:
                    say(f"ERR {path} unknown mode {mode}")
                elif cam.request_mode(mode).wait(5.0):
                    log(f"{path}: mode {mode}")
                    say(f"OK {path} {mode}")
                else:
                    say(f"ERR {path} mode {mode} not applied in time")
            else:
                say(f"ERR unknown command {raw.strip()!r}")
        except Exception as e:  # keep the control channel alive whatever happens
            say(f"ERR {e}")


def parse_schedule(text: str) -> tuple[str, Schedule]:
    path, _, spec = text.partition("=")
    mode, period, duration = spec.split(":")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode}")
    s = Schedule(mode, float(period), float(duration))
    if not (0 < s.duration < s.period):
        raise ValueError("schedule needs 0 < duration < period")
    return path, s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8554, help="TCP port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--mount", action="append", default=[], metavar="/path=SPEC", required=True)
    ap.add_argument("--schedule", action="append", default=[], metavar="/path=MODE:PERIOD:DURATION")
    ap.add_argument("--auth", metavar="USER:PASS", help="require RTSP basic auth")
    args = ap.parse_args(argv)

    Gst.init(None)
    mounts = []
    for m in args.mount:
        path, sep, spec = m.partition("=")
        if not sep or not path.startswith("/"):
            ap.error(f"bad --mount {m!r}")
        mounts.append((path, spec))
    schedules: dict[str, list[Schedule]] = {}
    for s in args.schedule:
        try:
            path, sch = parse_schedule(s)
        except ValueError as e:
            ap.error(f"bad --schedule {s!r}: {e}")
        schedules.setdefault(path, []).append(sch)

    try:
        server = CamServer(args.port, mounts, schedules, args.auth)
        port = server.start()
    except Exception as e:
        log(f"error: {type(e).__name__}: {e}")
        return 2
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    threading.Thread(target=control_loop, args=(server,), name="control", daemon=True).start()
    log(f"listening on rtsp://127.0.0.1:{port}")
    say(f"READY {port}")
    loop.run()
    log("stopping")
    server.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    # GStreamer streaming threads may still call into Python; leave without finalizing them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
