"""When to decode a keyframe: the compressed stream decides, a periodic sample keeps watch.

Decoding a 720p keyframe costs ~7 ms, the packets' sizes cost nothing. Every picture fault leaves
a mark in the sizes the encoder chose before it can be confirmed:

- a **freeze** is only called while the median P-frame is below `freeze_p_ratio` of the keyframe
  (rules.py's veto), and with quality-mode encoders (CRF/VBR, HEVC) the P-frames then shrink against
  what this camera's P-frames were: the encoder has nothing new to code. Bitrate-mode encoders keep
  spending their budget on a still picture (P-frames 3.2 against 3.5 kB measured): there the packets
  do not show a freeze, and the periodic sample finds it (docs/design/health.md, "Decode cadence");
- a **black** or **covered/defocused** picture has far less detail, so its keyframe shrinks against
  the camera's usual keyframe (and a bitrate-mode encoder re-spending its budget on a still picture
  makes it grow).

So a keyframe is decoded when the GOP that just ended looks unlike the camera's recent GOPs (or
the P-frames have collapsed), when the rules have a fault pending or present (then every keyframe,
as without this module), and otherwise at least every `sample_interval_s`: that periodic sample
keeps the sharpness baseline and the snapshot fresh, and catches a fault the sizes did not show,
within its threshold + `sample_interval_s`. Pure: no clock, no decoder; the monitor and the
thresholds bench both drive it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import median

from core.settings import HealthConfig

__all__ = [
    "BASELINE_GOPS",
    "DROP",
    "GROW",
    "SHRINK",
    "SUSPECT_P_RATIO",
    "WARMUP_GOPS",
    "Cadence",
    "Gop",
    "looks_back",
]

BASELINE_GOPS = 9  # running baselines: median of the last 9 GOPs (≈ 18 s at GOP 2 s; a scene change re-baselines in ~5)
WARMUP_GOPS = 3  # every keyframe is decoded until the baselines hold this many GOPs
SUSPECT_P_RATIO = 1.5  # × freeze_p_ratio: P-frames this small against the keyframe may be a freeze
DROP = 0.6  # P-frames (bytes or share of the keyframe) below this share of their baseline: look
SHRINK = 0.6  # keyframe below this share of its baseline: detail lost (black, covered, defocused)
GROW = 1.6  # keyframe above this multiple of its baseline: the picture changed a lot


# Decisions that do not suspect a fault; any other decision also decodes the previous keyframe if it
# was skipped, so the rules compare the pair (previous, current) as every-keyframe sampling would.
_ROUTINE = frozenset({"periodic", "every keyframe", "warming up", "disabled"})


def looks_back(why: str) -> bool:
    """Whether a keyframe decoded for this reason should bring the skipped keyframe before it along."""
    return why not in _ROUTINE


@dataclass(frozen=True, slots=True)
class Gop:
    """Packet figures of the GOP ending at keyframe `t` (that keyframe and the P-frames before it)."""

    t: float
    key_bytes: int
    p_median: float | None  # median size of the frames between the previous keyframe and this one
    p_ratio: float | None  # p_median / key_bytes


class Cadence:
    """One camera's decode decisions. Not thread-safe: the session thread alone calls it."""

    def __init__(self, cfg: HealthConfig) -> None:
        self.cfg = cfg
        self._keys: deque[int] = deque(maxlen=BASELINE_GOPS)
        self._p_med: deque[float] = deque(maxlen=BASELINE_GOPS)
        self._p_ratio: deque[float] = deque(maxlen=BASELINE_GOPS)
        self._last_decoded_t: float | None = None

    @staticmethod
    def gop(t: float, key_bytes: int, p_sizes: list[int]) -> Gop:
        p_med = float(median(p_sizes)) if p_sizes else None
        p_ratio = p_med / key_bytes if p_med is not None and key_bytes > 0 else None
        return Gop(t, key_bytes, p_med, p_ratio)

    def suspicion(self, g: Gop) -> str | None:
        """Why this GOP looks unlike the camera's recent ones (None: it looks normal)."""
        if len(self._keys) < WARMUP_GOPS:
            return "warming up"
        base_key = median(self._keys)
        if g.key_bytes < SHRINK * base_key:
            return "keyframe shrank"
        if g.key_bytes > GROW * base_key:
            return "keyframe grew"
        if g.p_ratio is None or g.p_median is None or g.p_ratio > SUSPECT_P_RATIO * self.cfg.freeze_p_ratio:
            return None  # the encoder is spending on change: rules.py would veto a freeze anyway
        if self._p_ratio and g.p_ratio < DROP * median(self._p_ratio):
            return "P-frames shrank against the keyframe"
        if self._p_med and g.p_median < DROP * median(self._p_med):
            return "P-frames shrank"
        return None

    def decide(self, g: Gop, *, alert: bool) -> str | None:
        """Why keyframe `g` must be decoded, or None to skip it; then `g` joins the baselines.

        `alert`: the rules have a fault pending or present (HealthRules.pending) — decode every
        keyframe so confirmation and recovery take exactly as long as with every-keyframe sampling.
        """
        why = self._why(g, alert)
        self._keys.append(g.key_bytes)
        if g.p_median is not None and g.p_ratio is not None:
            self._p_med.append(g.p_median)
            self._p_ratio.append(g.p_ratio)
        if why is not None:
            self._last_decoded_t = g.t
        return why

    def _why(self, g: Gop, alert: bool) -> str | None:
        interval = self.cfg.sample_interval_s
        if interval <= 0:
            return "every keyframe"
        if alert:
            return "fault pending"
        suspicious = self.suspicion(g)
        if suspicious is not None:
            return suspicious
        if self._last_decoded_t is None or g.t - self._last_decoded_t >= interval - 1e-6:
            return "periodic"
        return None

    def restart(self) -> None:
        """A new connection: decode its first keyframe (the baselines stay: same camera, same encoder)."""
        self._last_decoded_t = None
