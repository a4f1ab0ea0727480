"""Pure measuring: one decoded picture in, a few numbers out (OpenCV on small grey images).

Why the Y plane: the luma plane of a decoded frame *is* the grey picture; converting to RGB first
costs 9.2 ms per 720p frame and taking the plane costs nothing (docs/design/platform.md §2).

Why two sizes (numbers in docs/design/health.md):
- the **difference** between samples is taken at half the source resolution. Shrinking averages
  sensor noise away, so at a fixed 160 px a quiet 1080p scene (0.33) differs *less* than a frozen
  320×240 one from a bitrate-mode encoder (0.36): no single threshold works. Halving every source
  keeps a quiet σ=2 scene at ≥ 1.10 grey levels from 240p to 1080p;
- the **most-changed 1 %** of pixels are left out of that mean, so an on-screen clock that keeps
  ticking over a frozen picture (~0.1 % of it) does not read as motion;
- **luma, dark share and sharpness** are taken at 160 px wide, where they cost ~0.01 ms each.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

__all__ = [
    "DIFF_MAX_WIDTH",
    "DIFF_TRIM",
    "FLAT_CONTRAST",
    "SMALL_WIDTH",
    "SNAPSHOT_WIDTH",
    "Picture",
    "diff_width",
    "laplacian_variance",
    "luma_plane",
    "measure_picture",
    "sharpness",
    "shrink",
    "snapshot_jpeg",
    "trimmed_diff",
]

SMALL_WIDTH = 160  # luma, dark share, sharpness: 160×90 at 16:9
DIFF_MAX_WIDTH = 1920  # half of 4K; bounds the reference picture kept per camera to 2 MB
DIFF_TRIM = 0.01  # share of the most-changed pixels left out of the difference: an OSD clock is ~0.1 %
FLAT_CONTRAST = 2.0  # grey-level standard deviation below which a picture has no detail at all
SNAPSHOT_WIDTH = 320
_LEVELS = np.arange(256, dtype=np.float64)
_TILES = (8, 6)  # sharpness is the median over these tiles, so a sharp OSD cannot hide a blur

# Formats whose first plane is 8-bit luma at full resolution: that plane is the grey picture.
_Y_FIRST = frozenset(
    {
        "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
        "yuv440p", "yuvj440p", "yuv411p", "yuvj411p", "nv12", "nv21", "nv16", "gray",
    }
)  # fmt: skip


_I420 = frozenset({"yuv420p", "yuvj420p"})  # planar 4:2:0: the snapshot is made by OpenCV


@dataclass(frozen=True, slots=True)
class Picture:
    """What one sampled picture measures as; `reference` is kept to compare with the next sample."""

    reference: np.ndarray  # uint8 grey at diff_width(), compared with the next sample
    luma: float  # mean grey level 0..255 (limited-range black is 16)
    dark_fraction: float  # share of pixels darker than the `dark_level` asked for
    sharpness: float  # Laplacian variance over picture variance, median of tiles; see sharpness()
    contrast: float  # grey-level standard deviation


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    """Plane `i` as a (height, width) uint8 view of the decoder's buffer (rows may be padded)."""
    plane = frame.planes[i]
    buf = np.frombuffer(memoryview(plane), dtype=np.uint8)
    rows = buf[: plane.line_size * plane.height].reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """The frame's luma as a (height, width) uint8 array: a view of the decoder's buffer when possible."""
    if frame.format.name in _Y_FIRST:
        return _plane(frame, 0)
    # 10-bit, RGB, paletted…: let swscale make the grey picture (rare on cameras; 1.8 ms at 720p).
    return frame.reformat(format="gray").to_ndarray()


def diff_width(source_width: int) -> int:
    """Half the source width, at least SMALL_WIDTH and at most DIFF_MAX_WIDTH (never enlarging)."""
    return min(source_width, max(SMALL_WIDTH, min(DIFF_MAX_WIDTH, source_width // 2)))


def shrink(grey: np.ndarray, target_w: int) -> np.ndarray:
    """Area-average `grey` down to `target_w` pixels wide, aspect kept (never enlarges).

    When the target divides the picture by an even factor both ways, halves first: OpenCV's 2×2
    path and a 2× step cost ~17 µs from 640×360 to 160×90 against ~100 µs for one 4× step. Each
    pixel is still the mean of the same block (rounded at each step: +0.2 grey levels at most).
    """
    h, w = grey.shape[:2]
    tw = min(target_w, w)
    size = (tw, max(1, round(h * tw / w)))
    if size == (w, h):
        return np.ascontiguousarray(grey)
    while w % (2 * size[0]) == 0 and h % (2 * size[1]) == 0 and (w // 2, h // 2) != size:
        w, h = w // 2, h // 2
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def trimmed_diff(a: np.ndarray, b: np.ndarray, trim: float = DIFF_TRIM) -> float | None:
    """Mean absolute grey-level difference, leaving out the `trim` share of most-changed pixels.

    None when the two pictures cannot be compared (the resolution changed).
    """
    if a.shape != b.shape:
        return None
    d = cv2.absdiff(a, b)
    hist = cv2.calcHist([d], [0], None, [256], [0, 256]).ravel()
    keep = d.size * (1.0 - trim)
    counts = np.minimum(np.cumsum(hist), keep)  # pixels kept, smallest differences first
    kept = np.diff(counts, prepend=0.0)
    return float((kept * _LEVELS).sum() / keep) if keep > 0 else 0.0


def laplacian_variance(grey: np.ndarray) -> float:
    """The common focus measure over the whole picture (kept for comparison in the bench)."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def sharpness(small: np.ndarray) -> tuple[float, float]:
    """(sharpness, contrast) of a small grey picture.

    Sharpness is the median over 8×6 tiles of the Laplacian's variance, divided by the picture's
    variance. The median ignores the few tiles a crisp on-screen clock occupies over a defocused
    lens; the division makes it blind to brightness and contrast, so a scene that turns dark is not
    read as a blur. A flat picture (contrast below FLAT_CONTRAST) has no detail: sharpness 0.
    """
    _, std = cv2.meanStdDev(small)
    contrast = float(std[0, 0])
    if contrast < FLAT_CONTRAST:
        return 0.0, contrast
    lap = cv2.Laplacian(small, cv2.CV_64F)  # integer kernel on uint8: exact
    nx, ny = _TILES
    h, w = lap.shape
    th, tw = h // ny, w // nx
    if th < 3 or tw < 3:
        return float(lap.var()) / (contrast * contrast), contrast
    # Each tile's variance as E[x²] − E[x]²; area-averaging to one pixel per tile gives the means.
    crop = lap[: th * ny, : tw * nx]
    mean = cv2.resize(crop, _TILES, interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(crop * crop, _TILES, interpolation=cv2.INTER_AREA)
    tiles = mean_sq - mean * mean
    return float(np.median(tiles)) / (contrast * contrast), contrast


def measure_picture(frame: av.VideoFrame, dark_level: float) -> Picture:
    """All per-sample figures of one decoded frame (~0.3 ms at 720p; decoding it costs ~8 ms)."""
    y = luma_plane(frame)
    ref = shrink(y, diff_width(y.shape[1]))
    small = shrink(ref, SMALL_WIDTH)
    sharp, contrast = sharpness(small)
    return Picture(
        reference=ref,
        luma=float(small.mean()),
        dark_fraction=float(np.count_nonzero(small < dark_level)) / small.size,
        sharpness=sharp,
        contrast=contrast,
    )


def snapshot_jpeg(frame: av.VideoFrame, width: int = SNAPSHOT_WIDTH, quality: int = 75) -> bytes:
    """A small colour JPEG of the frame for the camera wall (~0.3 ms from 720p 4:2:0, ~0.6 ms otherwise)."""
    w = min(width, frame.width)
    w -= w % 2
    h = max(2, round(frame.height * w / frame.width))
    h -= h % 2
    fmt = frame.format.name
    if fmt in _I420:
        # The planes shrunk by OpenCV and converted by it: a third of swscale's time to 320 px.
        y, u, v = (shrink(_plane(frame, i), s) for i, s in ((0, w), (1, w // 2), (2, w // 2)))
        if y.shape != (h, w) or u.shape != (h // 2, w // 2) or v.shape != u.shape:
            bgr = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
        else:
            if fmt == "yuvj420p":  # full range: squeeze to the limited range OpenCV's conversion expects
                y = cv2.convertScaleAbs(y, alpha=219 / 255, beta=16)
                u = cv2.convertScaleAbs(u, alpha=224 / 255, beta=128 - 128 * 224 / 255)
                v = cv2.convertScaleAbs(v, alpha=224 / 255, beta=128 - 128 * 224 / 255)
            i420 = np.concatenate((y.reshape(-1), u.reshape(-1), v.reshape(-1))).reshape(h * 3 // 2, w)
            bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    else:
        bgr = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
