"""Shifting fragment decode times (tfdt) in a byte stream, in place, for VOD playback across runs.

Why: each run's muxer starts decode times at zero (docs/design/platform.md §1.6), so a playlist spanning two runs
steps back in time at the discontinuity. Browsers reset their timeline there, but FFmpeg's HLS
demuxer feeds one MP4 demuxer and drops the first fragment after the step (measured: 25 of 450
frames lost). Adding each run's wall-clock offset to its `tfdt` makes the playlist one increasing
timeline; the patch rewrites only the 8-byte tfdt field, so sizes and byte ranges stay the same.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

__all__ = ["shift_decode_times", "track_timescales"]


def _children(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos, pos + head, pos + size
        pos += size


def _find(data: bytes | bytearray, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, _, p, e in _children(data, start, end):
        if k == kind:
            return p, e
    return None


def track_timescales(header: bytes) -> dict[int, int]:
    """track_ID → media timescale, from a segment's header (ftyp + moov)."""
    out: dict[int, int] = {}
    moov = _find(header, 0, len(header), b"moov")
    if moov is None:
        return out
    for kind, _, p, e in _children(header, *moov):
        if kind != b"trak":
            continue
        tkhd = _find(header, p, e, b"tkhd")
        mdia = _find(header, p, e, b"mdia")
        mdhd = _find(header, *mdia, b"mdhd") if mdia else None
        if tkhd is None or mdhd is None:
            continue
        track_id = struct.unpack_from(">I", header, tkhd[0] + (20 if header[tkhd[0]] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", header, mdhd[0] + (20 if header[mdhd[0]] == 1 else 12))[0]
        out[track_id] = timescale
    return out


def _patch_moof(box: bytearray, ticks: dict[int, int]) -> None:
    for kind, _, p, e in _children(box, 8, len(box)):
        if kind != b"traf":
            continue
        tfhd = _find(box, p, e, b"tfhd")
        tfdt = _find(box, p, e, b"tfdt")
        if tfhd is None or tfdt is None:
            continue
        add = ticks.get(struct.unpack_from(">I", box, tfhd[0] + 4)[0], 0)
        if not add:
            continue
        if box[tfdt[0]] == 1:
            t = struct.unpack_from(">Q", box, tfdt[0] + 4)[0]
            struct.pack_into(">Q", box, tfdt[0] + 4, max(0, t + add))
        else:  # 32-bit tfdt: patch only when it still fits (FFmpeg writes version 1)
            t = struct.unpack_from(">I", box, tfdt[0] + 4)[0] + add
            if 0 <= t < 2**32:
                struct.pack_into(">I", box, tfdt[0] + 4, t)


def shift_decode_times(
    chunks: Iterable[bytes], timescales: dict[int, int], shift_us: int, max_moof: int = 1 << 20
) -> Iterator[bytes]:
    """Pass a stream of top-level boxes (starting at a box boundary) through, adding `shift_us`
    to every track fragment's decode time. A stream cut mid-box (a byte range) passes unchanged
    from the cut on."""
    ticks = {tid: (shift_us * ts + 500_000) // 1_000_000 for tid, ts in timescales.items()}
    it = iter(chunks)
    buf = bytearray()

    def fill(n: int) -> bool:
        while len(buf) < n:
            chunk = next(it, None)
            if chunk is None:
                return False
            buf.extend(chunk)
        return True

    while True:
        if not fill(8):
            if buf:
                yield bytes(buf)
            return
        size, kind = struct.unpack_from(">I4s", buf, 0)
        if size == 1:
            if not fill(16):
                yield bytes(buf)
                return
            size = struct.unpack_from(">Q", buf, 8)[0]
        if size < 8:  # size 0 (to the end) or garbage: pass the rest through
            yield bytes(buf)
            yield from it
            return
        if kind == b"moof" and size <= max_moof:
            if not fill(size):
                yield bytes(buf)
                return
            box = bytearray(buf[:size])
            _patch_moof(box, ticks)
            yield bytes(box)
            del buf[:size]
            continue
        # any other box (mdat, …): stream it through without holding it
        left = size
        while left > 0:
            if not buf:
                chunk = next(it, None)
                if chunk is None:
                    return
                buf.extend(chunk)
            n = min(left, len(buf))
            yield bytes(buf[:n])
            del buf[:n]
            left -= n
