"""Decoding one keyframe on its own: the decoder settings the sampler and its benches share.

- `thread_count=1`: docs/design/platform.md §2: decoder threads make keyframe-only decoding slower (and every
  thread's work is CPU a camera pays for; the cameras are the parallelism).
- `skip_frame=NONKEY`: only keyframes are ever fed; anything else is dropped unread.
- deblocking stays on. Skipping it (`skip_loop_filter=all`) saves ~11 % of a 720p keyframe's
  decode (9.1 → 8.1 ms of CPU), but block edges then read as detail: at CRF 35 a blurred lens
  measured 0.143 of the moving street's sharpness instead of 0.086, and the full threshold replay
  missed that tamper (docs/design/health.md, "Alternatives rejected").
"""

from __future__ import annotations

from typing import Any

import av

__all__ = ["DECODER_OPTIONS", "decode_keyframe", "open_keyframe_decoder"]

DECODER_OPTIONS: dict[str, str] = {}  # AVCodecContext options, for trying others (see above)


def open_keyframe_decoder(src: Any) -> Any:
    """A decoder of our own for `src`'s codec (an av CodecContext), fed keyframes alone."""
    ctx: Any = av.CodecContext.create(src.name, "r")  # typed loosely: PyAV's stubs lack decode()
    if src.extradata:
        ctx.extradata = src.extradata
    ctx.thread_count = 1
    ctx.skip_frame = "NONKEY"
    ctx.options = dict(DECODER_OPTIONS)
    return ctx


def decode_keyframe(ctx: Any, packet: av.Packet | None) -> av.VideoFrame | None:
    """The picture of one keyframe; raises on a packet that does not decode.

    With B-frames the decoder holds a picture back for reordering: then it is drained and reset, so
    each sample shows its own keyframe rather than one two GOPs old.
    """
    frames = ctx.decode(packet)
    if not frames:
        frames = ctx.decode(None)
        ctx.flush_buffers()
    frame = frames[-1] if frames else None
    return frame if isinstance(frame, av.VideoFrame) else None
