"""Live fMP4 packaging (playback/live_fmp4.py): what the browser gets must decode, frame by frame.

The frames come from a real H.264 encoder (libx264 through PyAV, Annex B with in-band parameter
sets, as RTSP cameras send them); the packaged stream is read back by FFmpeg's MP4 demuxer."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from playback.live_fmp4 import (
    TIMESCALE,
    UnsupportedCodec,
    annexb_nals,
    avc_config,
    avcc_nals,
    init_segment,
    media_fragment,
    to_avcc,
)


def encoded_frames(n: int = 30, w: int = 160, h: int = 96) -> list[av.Packet]:
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base = Fraction(1, 25)
    cc.options = {"tune": "zerolatency", "preset": "ultrafast", "g": "10"}
    out: list[av.Packet] = []
    for i in range(n):
        img = np.full((h, w, 3), (i * 8) % 256, np.uint8)
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        f.pts = i
        out += cc.encode(f)
    out += cc.encode(None)
    return out


def test_frames_packaged_one_fragment_each_decode_in_order() -> None:
    pkts = encoded_frames()
    cfg = None
    stream = bytearray()
    step = TIMESCALE // 25
    for i, p in enumerate(pkts):
        sample, new = to_avcc(bytes(p), cfg, False)
        if new is not None:
            cfg = new
            stream += init_segment(cfg, 160, 96)
        assert cfg is not None, "the first keyframe carries the parameter sets"
        assert all(n[0] & 0x1F not in (7, 8, 9) for n in avcc_nals(sample)), "parameter sets go in the init only"
        stream += media_fragment(i + 1, i * step, step, 0, p.is_keyframe, sample)
    assert cfg.codec.startswith("avc1.")
    with av.open(io.BytesIO(bytes(stream))) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == len(pkts)
    assert [round(float(f.pts * f.time_base) * 25) for f in frames] == list(range(len(pkts)))
    assert (frames[0].width, frames[0].height) == (160, 96)


def test_config_from_extradata_in_either_form() -> None:
    pkts = encoded_frames(3)
    nals = annexb_nals(bytes(pkts[0]))
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    annexb = b"\0\0\0\1" + sps + b"\0\0\0\1" + pps
    a = avc_config("h264", annexb)
    avcc = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps + b"\1" + len(pps).to_bytes(2, "big") + pps
    b = avc_config("h264", avcc)
    assert a is not None and b is not None
    assert (a.sps, a.pps, a.avcc_input) == ((sps,), (pps,), False)
    assert (b.sps, b.pps, b.avcc_input) == ((sps,), (pps,), True)
    assert avc_config("h264", b"") is None, "no parameter sets yet: the first keyframe brings them"
    with pytest.raises(UnsupportedCodec, match="hevc"):
        avc_config("hevc", b"")
