"""Measuring one picture: Y plane taken straight, shrinking, the trimmed difference, sharpness, JPEG."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from ingest.health.metrics import (
    FLAT_CONTRAST,
    SMALL_WIDTH,
    diff_width,
    luma_plane,
    measure_picture,
    sharpness,
    shrink,
    snapshot_jpeg,
    trimmed_diff,
)
from harness.health_clips import ClipSpec, ScriptedScene, draw_clock


def scene_luma(width: int = 640, height: int = 360, scene: str = "moving", frames: int = 1) -> np.ndarray:
    gen = ScriptedScene(ClipSpec(width, height, clock=False))
    out = None
    for i in range(frames):
        out = gen.frame(i, scene, i == 0)  # type: ignore[arg-type]
    assert out is not None
    return out[:height].copy()


def yuv_frame(y: np.ndarray, fmt: str = "yuv420p") -> av.VideoFrame:
    h, w = y.shape
    i420 = np.full((h * 3 // 2, w), 128, np.uint8)
    i420[:h] = y
    frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
    return frame if fmt == "yuv420p" else frame.reformat(format=fmt)


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "nv12", "yuv444p", "gray"])
def test_luma_plane_is_the_y_plane_without_conversion(fmt: str) -> None:
    y = scene_luma(322, 180)  # 322 is not a multiple of the row alignment: rows are padded
    frame = yuv_frame(y, fmt)
    got = luma_plane(frame)
    assert got.shape == (180, 322)
    if fmt in ("yuv420p", "nv12", "yuv444p"):
        assert frame.planes[0].line_size >= 322
        np.testing.assert_array_equal(got, y)
    else:  # yuvj420p, gray: full range, swscale stretches the levels
        assert abs(float(got.mean()) - float(y.mean())) < 12


def test_luma_plane_falls_back_to_swscale_for_other_formats() -> None:
    y = scene_luma(320, 180)
    frame = yuv_frame(y).reformat(format="rgb24")
    got = luma_plane(frame)
    assert got.shape == (180, 320) and got.dtype == np.uint8
    assert abs(float(got.mean()) - float(y.mean())) < 3


def test_sizes() -> None:
    assert [diff_width(w) for w in (176, 320, 640, 1280, 1920, 3840, 7680)] == [160, 160, 320, 640, 960, 1920, 1920]
    small = shrink(scene_luma(1280, 720), SMALL_WIDTH)
    assert small.shape == (90, 160)
    assert shrink(scene_luma(320, 240), SMALL_WIDTH).shape == (120, 160)
    tiny = np.zeros((72, 128), np.uint8)
    assert shrink(tiny, SMALL_WIDTH).shape == (72, 128)  # never enlarges


def test_trimmed_diff_ignores_a_ticking_clock_but_not_noise_or_motion() -> None:
    base = scene_luma(640, 360)
    a, b = base.copy(), base.copy()
    draw_clock(a, 10, 25)
    draw_clock(b, 11, 25)
    ra, rb = shrink(a, 320), shrink(b, 320)
    assert float(cv2.absdiff(ra, rb).mean()) > 0.02  # the clock alone moves the plain mean…
    assert trimmed_diff(ra, rb) == 0.0  # …and is left out here
    rng = np.random.default_rng(3)
    noisy = [np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for _ in range(2)]
    d_noise = trimmed_diff(shrink(noisy[0], 320), shrink(noisy[1], 320))
    assert d_noise is not None and d_noise > 1.0  # σ=2 sensor noise at half resolution
    moved = np.roll(base, 6, axis=1)
    d_move = trimmed_diff(shrink(base, 320), shrink(moved, 320))
    assert d_move is not None and d_move > 5
    assert trimmed_diff(ra, shrink(base, 160)) is None  # resolution changed: not comparable


def test_trimmed_diff_matches_a_sorted_reference() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (90, 160), dtype=np.uint8)
    b = rng.integers(0, 256, (90, 160), dtype=np.uint8)
    d = np.sort(cv2.absdiff(a, b).ravel().astype(np.float64))
    keep = d.size * 0.99
    ref = d[: int(keep)].sum() / keep
    assert trimmed_diff(a, b) == pytest.approx(ref, abs=0.05)


def test_sharpness_drops_with_blur_but_not_with_darkness() -> None:
    y = scene_luma(640, 360)
    s_sharp, _ = sharpness(shrink(y, SMALL_WIDTH))
    blurred = cv2.GaussianBlur(y, (0, 0), 640 / 100)
    s_blur, _ = sharpness(shrink(blurred, SMALL_WIDTH))
    dim = (16 + (y.astype(np.float32) - 16) * 0.2).astype(np.uint8)
    s_dim, c_dim = sharpness(shrink(dim, SMALL_WIDTH))
    assert s_blur < 0.1 * s_sharp
    assert s_dim > 0.7 * s_sharp and c_dim > FLAT_CONTRAST
    raw_sharp = cv2.Laplacian(shrink(y, SMALL_WIDTH), cv2.CV_32F).var()
    raw_dim = cv2.Laplacian(shrink(dim, SMALL_WIDTH), cv2.CV_32F).var()
    assert raw_dim < 0.1 * raw_sharp  # what the plain Laplacian variance would have called a blur


def test_a_sharp_osd_does_not_hide_a_blurred_lens() -> None:
    y = scene_luma(640, 360)
    blurred = cv2.GaussianBlur(y, (0, 0), 640 / 100)
    draw_clock(blurred, 123, 25)
    s_sharp, _ = sharpness(shrink(y, SMALL_WIDTH))
    s_blur, _ = sharpness(shrink(blurred, SMALL_WIDTH))
    assert s_blur < 0.1 * s_sharp


def test_a_flat_picture_has_no_detail() -> None:
    grey = np.full((90, 160), 140, np.uint8)
    grey[::7, ::5] = 141
    assert sharpness(grey) == (0.0, pytest.approx(float(grey.astype(np.float32).std())))


def test_measure_picture_on_a_black_frame_with_osd() -> None:
    y = np.full((240, 320), 18, np.uint8)
    draw_clock(y, 42, 25)
    pic = measure_picture(yuv_frame(y), dark_level=32)
    assert pic.reference.shape == (120, 160)
    assert pic.luma < 25 and pic.dark_fraction > 0.98


def test_measure_picture_on_a_normal_frame() -> None:
    pic = measure_picture(yuv_frame(scene_luma(1280, 720)), dark_level=32)
    assert pic.reference.shape == (360, 640)
    assert 60 < pic.luma < 200 and pic.dark_fraction < 0.05 and pic.sharpness > 0.1 and pic.contrast > 20


def test_snapshot_jpeg_is_a_small_colour_picture() -> None:
    y = scene_luma(1280, 720)
    frame = yuv_frame(y)
    data = snapshot_jpeg(frame)
    assert data[:2] == b"\xff\xd8" and len(data) < 60_000
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (180, 320, 3)
