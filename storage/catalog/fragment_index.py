"""The fragment index of a segment, packed: ~8 bytes a fragment instead of ~35 of JSON.

Why: the index is most of a segment row (30 fragments of a 60 s segment with 2 s GOPs), and the
city keeps ~190 M rows for 30 days. Fragments of one object nearly always follow each other
(offset = previous offset + previous size, start = previous start + previous duration), so each
is stored as unsigned LEB128 varints of its size and duration plus zigzag varints of how far its
offset and start differ from that prediction — usually 0, one byte each. Any value a Python int
holds within 64 bits round-trips, so objects past 4 GB and negative start offsets are fine.

Two layouts, chosen by `pack_fragments`:
- version 2, the usual case (every fragment follows the previous one, sizes and durations below
  2³²): count and the first offset as varints, the first start as a zigzag varint, then the sizes
  and the durations as little-endian u32 arrays — 8 bytes a fragment, decoded by two
  `struct.unpack_from` calls (~10 µs for 30 fragments; a playlist decodes 60 segments);
- version 1, anything else: count, then per fragment zz(offset − predicted offset), size,
  zz(start_off_us − predicted start), duration_us, all varints.
Rows copied by the migration from the JSON schema hold the JSON text's bytes (`[[offset, size,
start, duration], …]`); `unpack_fragments` reads those too, until retention takes them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from itertools import accumulate

from storage.catalog.models import Fragment

__all__ = ["FragmentIndexError", "pack_fragments", "unpack_fragments"]

_VERSION = 1
# Fragment is a frozen dataclass: its __init__ goes through object.__setattr__ per field (~1.5 µs a
# fragment, most of a playlist's decoding). The slots' own setters are half that.
_new = object.__new__
_set_off, _set_size = Fragment.offset.__set__, Fragment.size.__set__  # type: ignore[attr-defined]
_set_start, _set_dur = Fragment.start_off_us.__set__, Fragment.duration_us.__set__  # type: ignore[attr-defined]


def _fragment(offset: int, size: int, start_off_us: int, duration_us: int) -> Fragment:
    f = _new(Fragment)
    _set_off(f, offset)
    _set_size(f, size)
    _set_start(f, start_off_us)
    _set_dur(f, duration_us)
    return f

_CONTIGUOUS = 2
_JSON = ord("[")  # a row copied from the JSON schema
_U32 = 1 << 32


class FragmentIndexError(ValueError):
    """A packed index that is truncated, of an unknown version, or holds a negative size."""


def _put(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zz(v: int) -> int:
    return v * 2 if v >= 0 else -v * 2 - 1


def _contiguous(frags: Sequence[Fragment]) -> bool:
    prev = None
    for f in frags:
        if not (0 <= f.size < _U32 and 0 <= f.duration_us < _U32):
            return False
        if prev is not None and (f.offset != prev.offset + prev.size or f.start_off_us != prev.start_off_us + prev.duration_us):
            return False
        prev = f
    return bool(frags) and frags[0].offset >= 0


def pack_fragments(frags: Sequence[Fragment]) -> bytes:
    if _contiguous(frags):
        out = bytearray((_CONTIGUOUS,))
        _put(out, len(frags))
        _put(out, frags[0].offset)
        _put(out, _zz(frags[0].start_off_us))
        n = len(frags)
        out += struct.pack(f"<{n}I{n}I", *(f.size for f in frags), *(f.duration_us for f in frags))
        return bytes(out)
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


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7


def _unpack_contiguous(data: bytes) -> list[Fragment]:
    try:
        n, pos = _varint(data, 1)
        off, pos = _varint(data, pos)
        zstart, pos = _varint(data, pos)
        if len(data) - pos != 8 * n:
            raise FragmentIndexError(f"fragment index holds {len(data) - pos} bytes of arrays for {n} fragments")
        vals = struct.unpack_from(f"<{2 * n}I", data, pos)
    except (IndexError, struct.error):
        raise FragmentIndexError("truncated fragment index") from None
    sizes, durs = vals[:n], vals[n:]
    start = (zstart >> 1) ^ -(zstart & 1)
    offs = accumulate(sizes[:-1], initial=off)
    starts = accumulate(durs[:-1], initial=start)
    return list(map(_fragment, offs, sizes, starts, durs))


def unpack_fragments(raw: bytes | bytearray | memoryview) -> list[Fragment]:
    data = bytes(raw)
    if not data:
        return []
    if data[0] == _CONTIGUOUS:
        return _unpack_contiguous(data)
    if data[0] == _JSON:
        try:
            return [Fragment(*map(int, r)) for r in json.loads(data)]
        except (ValueError, TypeError) as e:
            raise FragmentIndexError(f"bad JSON fragment index: {e}") from None
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
        out.append(_fragment(off, size, start, dur))
        off += size
        start += dur
    return out
