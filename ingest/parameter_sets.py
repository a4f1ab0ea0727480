"""In-band codec parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) of a keyframe, to notice a
camera changing resolution or profile mid-stream: such a change must start a new run."""

from __future__ import annotations

__all__ = ["parameter_sets"]

_H264 = {7, 8}
_H265 = {32, 33, 34}


def _nal_units(data: bytes) -> list[bytes]:
    """Split Annex-B bytes on start codes (00 00 01 / 00 00 00 01)."""
    units = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        unit = data[start:end]
        if j >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]
        if unit:
            units.append(unit)
        i = j
    return units


def parameter_sets(data: bytes, codec: str) -> bytes:
    """The distinct parameter-set NAL units of a packet, joined; b'' if none (or not Annex-B)."""
    if not data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return b""
    out = []
    for nal in _nal_units(data[:4096] if len(data) > 4096 else data):
        if codec == "h264":
            if nal[0] & 0x1F in _H264:
                out.append(nal)
        elif codec in ("hevc", "h265"):
            if (nal[0] >> 1) & 0x3F in _H265:
                out.append(nal)
    # The demuxer may prepend the SDP's sets to the first keyframe: compare sets, not sequences.
    return b"|".join(sorted(set(out)))
