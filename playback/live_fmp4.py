"""Packages live H.264 frames as fragmented MP4 for Media Source Extensions: an init segment
(ftyp + moov) per codec configuration, then one fragment (moof + mdat) per frame.

Why our own boxes and not a muxer: one frame in, one fragment out, at once — FFmpeg's mp4 muxer
holds each packet until the next gives its duration (a frame of delay) and costs a PyAV call chain
per frame. The boxes are few and fixed (ISO/IEC 14496-12 and -15); a fragment is ~120 bytes of
header around the frame's bytes. A frame's duration is not known when it arrives: the previous
frame interval stands in (MSE only uses it to end the buffered range; the next fragment's decode
time is exact).

H.264 only: HEVC needs a decoder most browsers lack, and the page falls back to the camera's H.264
substream or snapshots (docs/design/live.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["AvcConfig", "TIMESCALE", "UnsupportedCodec", "avc_config", "init_segment", "media_fragment", "to_avcc"]

TIMESCALE = 90_000
_KEY_FLAGS = 0x02000000  # sample_depends_on = 2 (an I frame)
_DELTA_FLAGS = 0x01010000  # depends on others, not a sync sample
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class UnsupportedCodec(ValueError):
    """The live path cannot package this codec for browsers."""


@dataclass(frozen=True, slots=True)
class AvcConfig:
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    avcc_input: bool  # packets are length-prefixed (from MP4/MKV), not Annex B (from RTSP)

    @property
    def codec(self) -> str:
        """The RFC 6381 codec string for `MediaSource.isTypeSupported`."""
        s = self.sps[0]
        return f"avc1.{s[1]:02x}{s[2]:02x}{s[3]:02x}"


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def annexb_nals(data: bytes | memoryview) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01)."""
    b = bytes(data)
    out: list[bytes] = []
    i = b.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = b.find(b"\x00\x00\x01", start)
        end = len(b) if j < 0 else j
        nal = b[start:end]
        if j >= 0 and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")  # the 4-byte start code's leading zero (and trailing zeros)
        if nal:
            out.append(nal)
        i = j
    return out


def avcc_nals(data: bytes | memoryview, size: int = 4) -> list[bytes]:
    b = bytes(data)
    out, pos = [], 0
    while pos + size <= len(b):
        n = int.from_bytes(b[pos : pos + size], "big")
        out.append(b[pos + size : pos + size + n])
        pos += size + n
    return out


def avc_config(codec: str, extradata: bytes) -> AvcConfig | None:
    """The stream's SPS/PPS from its extradata (Annex B or avcC); None when it has none yet
    (in-band parameter sets in the first keyframe then make one, see `to_avcc`)."""
    if codec != "h264":
        raise UnsupportedCodec(f"{codec} cannot be sent to browsers by the live path (H.264 only)")
    if extradata[:1] == b"\x01" and len(extradata) > 7:
        pos = 6
        sps, pps = [], []
        for _ in range(extradata[5] & 0x1F):
            n = int.from_bytes(extradata[pos : pos + 2], "big")
            sps.append(extradata[pos + 2 : pos + 2 + n])
            pos += 2 + n
        for _ in range(extradata[pos]):
            n = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
            pps.append(extradata[pos + 3 : pos + 3 + n])
            pos += 2 + n
        return AvcConfig(tuple(sps), tuple(pps), True) if sps and pps else None
    nals = annexb_nals(extradata)
    sps = tuple(n for n in nals if n[0] & 0x1F == 7)
    pps = tuple(n for n in nals if n[0] & 0x1F == 8)
    return AvcConfig(sps, pps, False) if sps and pps else None


def to_avcc(data: bytes | memoryview, cfg: AvcConfig | None, avcc_input: bool) -> tuple[bytes, AvcConfig | None]:
    """A frame as an MP4 sample (4-byte lengths), without parameter sets and delimiters; and the
    configuration its in-band parameter sets describe, when they differ from `cfg` (a new init)."""
    nals = avcc_nals(data) if avcc_input else annexb_nals(data)
    sps = tuple(n for n in nals if n[0] & 0x1F == 7)
    pps = tuple(n for n in nals if n[0] & 0x1F == 8)
    new = None
    if sps and pps and (cfg is None or sps != cfg.sps or pps != cfg.pps):
        new = AvcConfig(sps, pps, avcc_input)
    sample = b"".join(struct.pack(">I", len(n)) + n for n in nals if n[0] & 0x1F not in (7, 8, 9))
    return sample, new


def init_segment(cfg: AvcConfig, width: int, height: int) -> bytes:
    """ftyp + moov for one H.264 video track (track 1, timescale `TIMESCALE`), fragmented."""
    s = cfg.sps[0]
    avcc = bytes([1, s[1], s[2], s[3], 0xFF, 0xE0 | len(cfg.sps)])
    avcc += b"".join(struct.pack(">H", len(x)) + x for x in cfg.sps)
    avcc += bytes([len(cfg.pps)]) + b"".join(struct.pack(">H", len(x)) + x for x in cfg.pps)
    avc1 = _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16),
        struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
        bytes(32), struct.pack(">Hh", 0x18, -1),
        _box(b"avcC", avcc),
    )  # fmt: skip
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full(b"stts", 0, 0, struct.pack(">I", 0)),
        _full(b"stsc", 0, 0, struct.pack(">I", 0)),
        _full(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = _box(
        b"minf",
        _full(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0)),
        _full(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"vide"), bytes(12), b"vigil live\x00"),
        minf,
    )
    tkhd = _full(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, 0), bytes(8), struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mvhd = _full(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH", 0, 0, 1000, 0, 0x10000, 0x100), bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2),
    )  # fmt: skip
    mvex = _box(b"mvex", _full(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0)))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso6avc1mp41")
    return ftyp + _box(b"moov", mvhd, _box(b"trak", tkhd, mdia), mvex)


def media_fragment(seq: int, decode_time: int, duration: int, cts: int, keyframe: bool, sample: bytes) -> bytes:
    """moof + mdat holding one sample (times in `TIMESCALE` ticks)."""
    trun_flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
    # moof = 8 + mfhd 16 + traf (8 + tfhd 16 + tfdt 20 + trun 36) = 104 bytes
    moof_size = 104
    trun = _full(
        b"trun", 1, trun_flags,
        struct.pack(">IiIIIi", 1, moof_size + 8, duration, len(sample), _KEY_FLAGS if keyframe else _DELTA_FLAGS, cts),
    )  # fmt: skip
    traf = _box(
        b"traf",
        _full(b"tfhd", 0, 0x020000, struct.pack(">I", 1)),  # default-base-is-moof
        _full(b"tfdt", 1, 0, struct.pack(">Q", decode_time)),
        trun,
    )
    moof = _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", seq & 0xFFFFFFFF)), traf)
    assert len(moof) == moof_size
    return moof + struct.pack(">I4s", 8 + len(sample), b"mdat") + sample
