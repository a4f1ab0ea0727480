"""The verdict: a pure state machine from observations to feed states.

Observations come in as dataclasses — a `Sample` of picture and packet figures per sampled keyframe,
a `LinkCheck` from the watchdog, a `ConnectFailed` from the worker — with monotonic times in seconds.
Nothing here reads a clock, decodes or writes: tests replay sequences and check every transition.

States (core/states.py `VERDICTS`): `starting` (no verdict yet), `online`, `frozen`, `black`,
`tampered`, `offline`.

- A picture fault *holds* on a sample when its condition is true; it is *confirmed* once it has held
  without a break for its duration (`freeze_after_s`, `black_after_s`, `tamper_after_s`). When
  several are confirmed the most specific wins: black > tampered > frozen (a black picture is also
  unchanging and has no detail).
- `offline`: no video packet for `stall_timeout_s` (checked by `LinkCheck`), or a connection attempt
  failed. It overrides every picture state.
- Hysteresis: back to `online` only after no fault has held for `recover_after_s`; a fault whose
  condition flickers neither enters nor leaves, so a feed does not flap.
- Times: a transition is dated when its evidence began (`at`), not when it was confirmed
  (`detected`): a freeze noticed after 10 s began 10 s earlier, an outage began with the last
  packet. So the history, and the availability report built on it, measure the fault itself.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from statistics import median
from typing import Any

from core.settings import HealthConfig
from core.states import BLACK, FAULTS, FROZEN, OFFLINE, ONLINE, STARTING, TAMPERED

__all__ = [
    "BASELINE_MIN_SAMPLES",
    "BASELINE_SAMPLES",
    "CLOSER",
    "EXACT_REPEAT",
    "FreezeCheck",
    "REPEAT_BAND",
    "REPEAT_MEMORY",
    "ConnectFailed",
    "Figures",
    "HealthRules",
    "LinkCheck",
    "Observation",
    "Sample",
    "Verdict",
]

BASELINE_SAMPLES = 60  # sharpness baseline: median of the last 60 clear online samples (~2 min at GOP 2 s)
BASELINE_MIN_SAMPLES = 5  # no tamper verdict before the camera has shown this many clear samples
# Keyframes arrive with jitter — the network's, and reads in bursts (ingest/source.py: a keyframe
# can wait out a 0.2 s pause plus 0.1 s at the live edge): a fault held for 9.7 s of arrival time
# of a 10 s duration, sampled once a GOP, would otherwise wait a whole GOP more to be confirmed.
JITTER_S = 0.35
EXACT_REPEAT = 0.25  # × freeze_diff: a picture repeated this closely did not change at all (codec noise only)
CLOSER = 0.7  # × diff: a picture this much closer to an older sample than to the last one has come back
REPEAT_BAND = 2.5  # × freeze_diff: tolerated while such repeats keep turning up (bitrate-mode encoders)
REPEAT_MEMORY = 3.0  # × freeze_after_s: how long an exact repeat keeps a feed that is already frozen, frozen


@dataclass(frozen=True, slots=True)
class Figures:
    """What one sample measured; None = not measured (no decoder, first sample, no P-frames…)."""

    diff: float | None = None  # grey levels vs the previous sample (half resolution, trimmed)
    repeat: float | None = None  # the smallest such difference vs the last 3 samples
    luma: float | None = None  # mean grey level
    dark_fraction: float | None = None  # share of pixels below black_luma
    sharpness: float | None = None  # see ingest/health/metrics.sharpness
    contrast: float | None = None  # grey-level standard deviation
    p_ratio: float | None = None  # median P-frame size since the previous sample / keyframe size
    p_median_bytes: float | None = None
    keyframe_bytes: int | None = None
    decode_ms: float | None = None

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {}
        for fld in fields(self):
            v = getattr(self, fld.name)
            if v is not None:
                out[fld.name] = v if isinstance(v, int) else round(float(v), 4)
        return out


@dataclass(frozen=True, slots=True)
class Sample:
    """One judged keyframe. `skipped`: keyframes that arrived since the previous sample and were not
    judged (the decode cadence skips them); the pair then says nothing about the pictures between."""

    t: float  # monotonic arrival of the sampled keyframe, s
    figures: Figures
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class LinkCheck:
    t: float  # now, monotonic s
    last_packet_t: float  # newest video packet's arrival, or when waiting began if none came yet
    note: str = ""  # what the session said when the stream went away ("stream ended", …)


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    t: float
    reason: str  # credential-free
    last_packet_t: float | None = None


Observation = Sample | LinkCheck | ConnectFailed


@dataclass(frozen=True, slots=True)
class FreezeCheck:
    """Whether one sample shows a frozen picture, and the figures that decided it (quoted in reasons)."""

    held: bool
    why: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """One transition: the feed is `state` since `at`; we knew it at `detected`."""

    state: str
    previous: str
    at: float
    detected: float
    reason: str
    figures: dict[str, Any]


class HealthRules:
    """One camera's verdicts. Not thread-safe: the caller serialises `feed` (HealthMonitor holds a lock)."""

    def __init__(self, cfg: HealthConfig, *, start_t: float = 0.0) -> None:
        self.cfg = cfg
        self.state = STARTING
        self.since = start_t
        self.reason = ""
        self._after = {BLACK: cfg.black_after_s, TAMPERED: cfg.tamper_after_s, FROZEN: cfg.freeze_after_s}
        self._onset: dict[str, float | None] = {f: None for f in FAULTS}
        self._clear_since: float | None = None
        self._prev_t: float | None = None
        self._repeat_t: float | None = None  # when a picture last repeated exactly
        self._baseline: deque[float] = deque(maxlen=BASELINE_SAMPLES)

    # ---- what the state machine knows --------------------------------------------------------
    @property
    def baseline(self) -> float | None:
        """The camera's own sharpness: median of recent clear online samples (None until enough)."""
        if len(self._baseline) < BASELINE_MIN_SAMPLES:
            return None
        return float(median(self._baseline))

    @property
    def pending(self) -> bool:
        """A picture fault is held but not yet confirmed, the feed is not `online`, or the sharpness
        baseline is still being learnt.

        The decode cadence (cadence.py) samples every keyframe while this is true, so a fault is
        confirmed, a recovery seen, and tampering judged from a camera's start (after 5 clear
        samples), as fast as with every-keyframe sampling.
        """
        return (
            self.state != ONLINE
            or len(self._baseline) < BASELINE_MIN_SAMPLES
            or any(on is not None for on in self._onset.values())
        )

    def holds(self, f: Figures, t: float, skipped: int = 0) -> dict[str, bool]:
        """Which picture-fault conditions this sample meets (unmeasured figures never meet one)."""
        return self._holds(f, self.freeze_check(f, t, skipped))

    def _holds(self, f: Figures, freeze: FreezeCheck) -> dict[str, bool]:
        c = self.cfg
        base = self.baseline
        black = f.dark_fraction is not None and f.dark_fraction >= c.black_fraction
        tampered = f.sharpness is not None and base is not None and f.sharpness < c.tamper_ratio * base
        return {BLACK: black, TAMPERED: tampered, FROZEN: freeze.held}

    def freeze_check(self, f: Figures, t: float, skipped: int = 0) -> FreezeCheck:
        """Whether the picture did not change beyond the codec's noise, the encoder agreeing; and why.

        - Not when it changed since the previous sample by more than the come-back band
          (REPEAT_BAND × freeze_diff, above any re-quantised frozen picture measured): whatever an
          older picture says, this one moved. A loop, a tour or a timelapse comes back to an older
          picture exactly; that is no freeze when the pictures between differ.
        - The difference to the previous sample is below freeze_diff: a live scene's sensor noise
          keeps it above (≥ 0.56 measured, a dark CRF-encoded street), a frozen picture's codec
          noise below (≤ 0.33 with CRF, HEVC, a camera-like QP floor or x264enc).
        - Or the smallest difference to the last three samples is. After skipped keyframes that, and a
          picture coming back (below), are a suspicion only: held, but not dated back over them.
        - Or, while the picture keeps coming back (`_repeats`) within freeze_after_s, up to the band:
          a bitrate-mode encoder without a QP floor re-quantises a frozen noisy picture differently
          at each keyframe (0–0.84 measured), but a live scene never comes back. Once frozen, a
          come-back counts for REPEAT_MEMORY × freeze_after_s, so such a feed does not flap.
        - Either way not while the P-frames are large against the keyframe (≥ freeze_p_ratio): the
          encoder is spending bits on change (quiet scenes on high-quality encoders measure ≥ 0.15,
          frozen pictures ≤ 0.06).

        `why` quotes the figures that decided, for the verdict's reason.
        """
        c = self.cfg
        if f.diff is None:
            return FreezeCheck(False, "no difference measured")
        if f.p_ratio is not None and f.p_ratio >= c.freeze_p_ratio:
            return FreezeCheck(False, f"P-frames at {f.p_ratio:.1%} of the keyframe ≥ {c.freeze_p_ratio:.0%}")
        band = REPEAT_BAND * c.freeze_diff
        if f.diff >= band:
            return FreezeCheck(False, f"difference {f.diff:.2f} ≥ {band:g}")
        p = f", P-frames at {f.p_ratio:.1%} of the keyframe" if f.p_ratio is not None else ""
        if f.diff < c.freeze_diff:
            return FreezeCheck(True, f"difference {f.diff:.2f} < {c.freeze_diff:g}{p}")
        if f.repeat is not None and f.repeat < c.freeze_diff:
            return FreezeCheck(
                True, f"difference {f.repeat:.2f} to an earlier keyframe < {c.freeze_diff:g} (to the last {f.diff:.2f}){p}"
            )
        if skipped and self._comes_back(f):
            # Across skipped keyframes a come-back is only a suspicion (a loop comes back too): held,
            # but not dated back, so the keyframes after it (or the kept ones before it) decide.
            return FreezeCheck(True, f"difference {f.diff:.2f} < {band:g}, the picture coming back across skipped keyframes{p}")
        memory = c.freeze_after_s * (REPEAT_MEMORY if self.state == FROZEN else 1.0)
        if self._repeat_t is not None and t - self._repeat_t <= memory + 1e-9:
            return FreezeCheck(
                True,
                f"difference {f.diff:.2f} < {band:g} with the picture coming back {t - self._repeat_t:.1f} s ago{p}",
            )
        return FreezeCheck(False, f"difference {f.diff:.2f} ≥ {c.freeze_diff:g}")

    def _repeats(self, f: Figures, skipped: int) -> bool:
        """Evidence that the picture is not live: it repeats an earlier sample better than noise allows.

        A live scene's sensor noise is new at every keyframe, so its difference to each of the last
        three samples is the same (quiet scenes: within 2 %). A frozen picture re-quantised at each
        keyframe comes back: exactly (≤ EXACT_REPEAT × freeze_diff), or closer to an older sample
        than to the previous one (< CLOSER × diff). Only among consecutive keyframes does it count as
        evidence for later samples (`_repeat_t`): a picture seen again after skipped ones is also
        what a loop or a tour shows.
        """
        return not skipped and self._comes_back(f)

    def _comes_back(self, f: Figures) -> bool:
        if f.diff is None or f.diff >= REPEAT_BAND * self.cfg.freeze_diff:
            return False  # it moved since the previous keyframe, whatever came back
        nearest = f.repeat if f.repeat is not None else f.diff
        if nearest < EXACT_REPEAT * self.cfg.freeze_diff:
            return True
        return nearest < CLOSER * f.diff

    # ---- the one entry point -----------------------------------------------------------------
    def feed(self, obs: Observation) -> Verdict | None:
        """Take one observation; return the transition it causes, if any."""
        if isinstance(obs, Sample):
            return self._sample(obs)
        if isinstance(obs, LinkCheck):
            return self._link_check(obs)
        return self._connect_failed(obs)

    def _sample(self, s: Sample) -> Verdict | None:
        t, f = s.t, s.figures
        if t < self.since or (self.state == OFFLINE and t <= self.since):
            # Pictures are judged on their own thread, packets watched on another: after a stall
            # (a paused worker, then a burst) a keyframe that arrived before the outage began can
            # be judged after it. It says nothing of the stream since, and must not end the state.
            return None
        if self._repeats(f, s.skipped):
            self._repeat_t = t
        freeze = self.freeze_check(f, t, s.skipped)
        holds = self._holds(f, freeze)
        for fault, held in holds.items():
            if fault == FROZEN and f.diff is None:
                continue  # no difference measured (undecodable keyframe): no evidence either way
            if not held:
                self._onset[fault] = None
            elif self._onset[fault] is None:
                # A difference compares two pictures: the picture already stood still at the earlier
                # one — unless keyframes were skipped between them (a loop comes back to a picture).
                back = fault == FROZEN and self._prev_t is not None and not s.skipped
                self._onset[fault] = self._prev_t if back else t
        faulty = any(holds.values())
        # A frozen feed recovers on a picture seen to change, not on one that could not be compared.
        neutral = not faulty and self.state == FROZEN and f.diff is None
        if faulty:
            self._clear_since = None
        elif self._clear_since is None and not neutral:
            self._clear_since = t
        if self.state == ONLINE and not faulty and f.sharpness is not None:
            self._baseline.append(f.sharpness)
        self._prev_t = t

        confirmed = [x for x in FAULTS if (on := self._onset[x]) is not None and t - on >= self._after[x] - JITTER_S]
        target = confirmed[0] if confirmed else None
        if target is not None:
            if target == self.state:
                return None
            if self.state in FAULTS and holds[self.state] and FAULTS.index(self.state) < FAULTS.index(target):
                return None  # the current, more specific fault still holds
            onset = self._onset[target]
            assert onset is not None
            return self._go(target, onset, t, self._enter_reason(target, f, t - onset, freeze), f)
        if self.state == ONLINE or faulty or neutral:
            return None
        # Nothing holds. From `starting` the first clear picture is enough; from a fault or offline
        # the picture must stay clear for recover_after_s.
        assert self._clear_since is not None
        if self.state == STARTING:
            return self._go(ONLINE, t, t, "first picture" if f.luma is not None else "packets flowing", f)
        if t - self._clear_since >= self.cfg.recover_after_s - JITTER_S:
            reason = self._clear_reason(t - self._clear_since, f, freeze)
            return self._go(ONLINE, self._clear_since, t, reason, f)
        return None

    def _link_check(self, c: LinkCheck) -> Verdict | None:
        if self.state == OFFLINE:
            return None
        silent = c.t - c.last_packet_t
        if silent < self.cfg.stall_timeout_s:
            return None
        reason = f"no video packets for {silent:.1f} s" + (f" ({c.note})" if c.note else "")
        return self._go(OFFLINE, c.last_packet_t, c.t, reason, {"silent_s": round(silent, 3)})

    def _connect_failed(self, c: ConnectFailed) -> Verdict | None:
        if self.state == OFFLINE:
            return None
        # The stream was gone since its last packet; a camera never seen is offline from now.
        at = c.last_packet_t if c.last_packet_t is not None and self.state != STARTING else c.t
        return self._go(OFFLINE, at, c.t, f"cannot connect: {c.reason}", {})

    # ---- transitions ---------------------------------------------------------------------------
    def _go(self, state: str, at: float, detected: float, reason: str, figures: Figures | dict[str, Any]) -> Verdict:
        at = min(max(at, self.since), detected)  # never before the state it ends, never in the future
        figs = figures.as_dict() if isinstance(figures, Figures) else dict(figures)
        base = self.baseline
        if isinstance(figures, Figures) and base is not None:
            figs["sharpness_baseline"] = round(base, 4)
        v = Verdict(state=state, previous=self.state, at=at, detected=detected, reason=reason, figures=figs)
        self.state, self.since, self.reason = state, at, reason
        if state == OFFLINE:
            # An outage breaks every picture streak; the next picture starts them afresh.
            self._onset = {x: None for x in FAULTS}
            self._clear_since = None
            self._prev_t = None
        return v

    def _enter_reason(self, fault: str, f: Figures, held_s: float, freeze: FreezeCheck) -> str:
        c = self.cfg
        if fault == BLACK:
            return (
                f"dark picture for {held_s:.1f} s: {f.dark_fraction or 0:.1%} ≥ {c.black_fraction:.0%} of pixels "
                f"below {c.black_luma:g} (mean luma {f.luma or 0:.0f})"
            )
        if fault == TAMPERED:
            base = self.baseline or 0.0
            share = (f.sharpness or 0.0) / base if base else 0.0
            return (
                f"detail lost for {held_s:.1f} s: sharpness {f.sharpness or 0:.3f} is {share:.0%} of the camera's "
                f"baseline {base:.3f} (threshold {c.tamper_ratio:.0%})"
            )
        return f"picture unchanged for {held_s:.1f} s: {freeze.why}"

    def _clear_reason(self, clear_s: float, f: Figures, freeze: FreezeCheck) -> str:
        """Why the feed is online again, quoting the figures of the sample that decided it."""
        c = self.cfg
        if self.state == FROZEN:
            return f"picture changing again for {clear_s:.1f} s: {freeze.why}"
        if self.state == BLACK and f.dark_fraction is not None:
            return (
                f"picture no longer dark for {clear_s:.1f} s: {f.dark_fraction:.1%} < {c.black_fraction:.0%} of "
                f"pixels below {c.black_luma:g}"
            )
        base = self.baseline
        if self.state == TAMPERED and f.sharpness is not None and base:
            return (
                f"detail back for {clear_s:.1f} s: sharpness {f.sharpness:.3f} is {f.sharpness / base:.0%} "
                f"of the camera's baseline {base:.3f} (threshold {c.tamper_ratio:.0%})"
            )
        what = {BLACK: "picture no longer dark", TAMPERED: "detail back", OFFLINE: "stream back"}
        return f"{what.get(self.state, 'picture clear')} for {clear_s:.1f} s"
