"""Pictures the demo's and the tests' cameras draw: a 3×5 bitmap font burnt in as an OSD clock
would be, and a fixed detailed background (texture and hard edges at several sizes, so sharpness
and frame-difference checks have something to see). numpy only: the camera server (system Python)
and the tests' clip makers (vigil's venv) both take them from here."""

from __future__ import annotations

import numpy as np

__all__ = ["draw_text", "smooth_noise", "textured_background"]

# 3×5 glyphs, rows top to bottom
_FONT = {
    "0": "111 101 101 101 111", "1": "010 110 010 010 111", "2": "111 001 111 100 111",
    "3": "111 001 111 001 111", "4": "101 101 111 001 001", "5": "111 100 111 001 111",
    "6": "111 100 111 101 111", "7": "111 001 010 010 010", "8": "111 101 111 101 111",
    "9": "111 101 111 001 111", ":": "000 010 000 010 000", ".": "000 000 000 000 010",
    " ": "000 000 000 000 000",
}
_GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool) for ch, rows in _FONT.items()}


def draw_text(y_plane: np.ndarray, text: str, x: int, y: int, scale: int = 2) -> None:
    """`text` (digits, ':', '.', ' ') in white on a black box into a luma plane at (x, y), in place;
    clipped at the plane's edges."""
    char_w, char_h = 4 * scale, 6 * scale
    h, w = y_plane.shape
    y_plane[y : min(h, y + char_h + scale), x : min(w, x + len(text) * char_w + scale)] = 16
    for i, ch in enumerate(text):
        big = np.kron(_GLYPHS.get(ch, _GLYPHS[" "]), np.ones((scale, scale), dtype=bool))
        gx, gy = x + scale + i * char_w, y + scale
        region = y_plane[gy : gy + big.shape[0], gx : gx + big.shape[1]]
        region[big[: region.shape[0], : region.shape[1]]] = 235


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise (a random grid, bilinear upsampling): texture with edges of several sizes, 0–1."""
    grid = rng.random((h // cell + 2, w // cell + 2), dtype=np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g0, g1 = grid[y0], grid[y0 + 1]
    top = g0[:, x0] * (1 - fx) + g0[:, x0 + 1] * fx
    bot = g1[:, x0] * (1 - fx) + g1[:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def textured_background(w: int, h: int, seed: int = 1) -> np.ndarray:
    """A fixed detailed grey picture (texture + hard-edged blocks, "buildings with windows"), uint8."""
    rng = np.random.default_rng(seed)
    img = 0.5 * smooth_noise(rng, h, w, 48) + 0.3 * smooth_noise(rng, h, w, 12) + 0.2 * smooth_noise(rng, h, w, 3)
    img = 40 + img * 170
    for _ in range(12):
        bw, bh = int(rng.integers(max(2, w // 20), max(3, w // 6))), int(rng.integers(max(2, h // 10), max(3, h // 3)))
        bx, by = int(rng.integers(0, max(1, w - bw))), int(rng.integers(0, max(1, h - bh)))
        img[by : by + bh, bx : bx + bw] = rng.integers(30, 220)
        img[by + 2 : by + bh - 2 : 6, bx + 2 : bx + bw - 2 : 6] = 230
    return np.clip(img, 16, 235).astype(np.uint8)
