"""The fragment index of a segment, packed: ~8 bytes a fragment instead of ~35 of JSON.

Why: the index is most of a segment row (30 fragments of a 60 s segment with 2 s GOPs), and the
city keeps ~190 M rows for 30 days. Fragments of one object nearly always follow each other
(offset = previous offset + previous size, start = previous start + previous duration), so each
is stored as unsigned LEB128 varints of its size and duration plus zigzag varints of how far its
offset and start differ from that prediction — usually 0, one byte each. Any value a Python int
holds within 64 bits round-trips, so objects past 4 GB and negative start offsets are fine.

Layout: version byte (1), fragment count, then per fragment: zz(offset − predicted offset),
size, zz(start_off_us − predicted start), duration_us.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.catalog.models import Fragment

__all__ = ["FragmentIndexError", "pack_fragments", "unpack_fragments"]

_VERSION = 1


class FragmentIndexError(ValueError):
    """A packed index that is truncated, of an unknown version, or holds a negative size."""


def _put(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zz(v: int) -> int:
    return v * 2 if v >= 0 else -v * 2 - 1


def pack_fragments(frags: Sequence[Fragment]) -> bytes:
    out = bytearray((_VERSION,))
    _put(out, len(frags))
    off = start = 0
    for f in frags:
        if f.size < 0 or f.duration_us < 0:
            raise FragmentIndexError(f"negative size or duration in {f}")
        _put(out, _zz(f.offset - off))
        _put(out, f.size)
        _put(out, _zz(f.start_off_us - start))
        _put(out, f.duration_us)
        off, start = f.offset + f.size, f.start_off_us + f.duration_us
    return bytes(out)


def unpack_fragments(raw: bytes | bytearray | memoryview) -> list[Fragment]:
    data = bytes(raw)
    if not data:
        return []
    if data[0] != _VERSION:
        raise FragmentIndexError(f"unknown fragment index version {data[0]}")
    n_data = len(data)
    pos = 1
    vals: list[int] = []
    try:
        # read every varint first: one tight loop, then build the fragments
        while pos < n_data:
            b = data[pos]
            pos += 1
            if b < 0x80:
                vals.append(b)
                continue
            v = b & 0x7F
            shift = 7
            while True:
                b = data[pos]
                pos += 1
                v |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            vals.append(v)
    except IndexError:
        raise FragmentIndexError("truncated fragment index") from None
    count = vals[0] if vals else 0
    if len(vals) != 1 + 4 * count:
        raise FragmentIndexError(f"fragment index holds {len(vals) - 1} values for {count} fragments")
    out: list[Fragment] = []
    off = start = 0
    for i in range(1, len(vals), 4):
        d_off, size, d_start, dur = vals[i], vals[i + 1], vals[i + 2], vals[i + 3]
        off += (d_off >> 1) ^ -(d_off & 1)
        start += (d_start >> 1) ^ -(d_start & 1)
        out.append(Fragment(off, size, start, dur))
        off += size
        start += dur
    return out
