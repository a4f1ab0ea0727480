"""Reads the clock camera's cell row (camserver/server.py `ClockCamera`) back from a picture.

The same rule as the browser's reader in harness/clock_reader.js: sample each cell's centre,
threshold at mid-grey, check the white/black mark and the parity cell.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLOCK_BITS", "read_clock_ms", "latency_ms"]

CLOCK_BITS = 24
CELLS = 2 + CLOCK_BITS + 1


def read_clock_ms(luma: np.ndarray) -> int | None:
    """ms since the epoch mod 2^24 drawn in a frame's luma plane (h × w), or None if unreadable."""
    h, w = luma.shape
    cell = max(8, (w - 16) // CELLS)
    cy = 8 + cell // 2
    bits = [int(luma[cy, 8 + i * cell + cell // 2] > 128) for i in range(CELLS)]
    if bits[0] != 1 or bits[1] != 0:
        return None
    data = bits[2 : 2 + CLOCK_BITS]
    if sum(data) & 1 != bits[-1]:
        return None
    v = 0
    for b in data:
        v = (v << 1) | b
    return v


def latency_ms(shown_ms: int, now_ms: int) -> int:
    """now − the clock read from a frame, across the 2^24 wrap."""
    return (now_ms - shown_ms) % (1 << CLOCK_BITS)
