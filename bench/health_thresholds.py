"""Measure the figures the health thresholds are chosen from; prints the tables in docs/design/health.md.

Clips come from harness/health_clips.py (PyAV + libx264/libx265, seeded): every scene at
320×240, 640×360 and 1280×720 with GOP 25/50/100 (CRF 26), then encoder variants — bitrate mode
(ABR + one-second VBV, as cameras' "CBR"), a GStreamer-x264enc-like live setting, a camera-like QP
floor, HEVC, B-frames, high/low quality, no OSD — and 1920×1080 for the quiet-versus-frozen case.
Only keyframes are decoded, as the sampler does (ingest/health/metrics.py does the measuring).

Per keyframe, against the previous keyframe: the chosen difference (half resolution, 1 % most-changed
pixels left out) and the smallest such difference to the last three keyframes (`repeat`), the rejected one (plain mean at 160 px wide, as platform.md §3 measured), the median
P-frame size since the previous keyframe over the keyframe's size, mean luma, dark share, the chosen
sharpness (tile median of the Laplacian variance over picture variance, 160 px) and the rejected raw
Laplacian variance. Then the margins per clip, each clip replayed through the real state machine
(ingest/health/rules.py) with the default settings — states reached and detection latency — twice:
every keyframe decoded (`sample_interval_s: 0`), and the adaptive cadence of the shipped default
(ingest/health/cadence.py: decode on suspicious packet sizes or a pending fault, else every
`sample_interval_s`, with the skipped previous keyframe decoded on a trigger), with the share of
keyframes each decodes; and the cost per sampled keyframe.

    /tmp/venv/bin/python bench/health_thresholds.py           # everything, ~10 min on 2 cores
    /tmp/venv/bin/python bench/health_thresholds.py --quick   # 320×240 + 640×360, GOP 50, ~1 min
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.health.metrics import (
    SMALL_WIDTH,
    laplacian_variance,
    luma_plane,
    measure_picture,
    shrink,
    snapshot_jpeg,
    trimmed_diff,
)
from ingest.health.cadence import Cadence, Gop, looks_back
from ingest.health.keyframe import decode_keyframe, open_keyframe_decoder
from ingest.health.monitor import MAX_KEPT
from ingest.health.rules import Figures, HealthRules, Sample, Verdict
from harness.health_clips import SCENES, ClipSpec, Part, make_health_clip
from core.settings import HealthConfig

LEAD_S = 2.0  # moving picture before the scene, so `frozen` has something to freeze
SCENE_S = 24.0
CFG = HealthConfig(sample_interval_s=0)  # every keyframe: the figures the thresholds were chosen from
ADAPTIVE = HealthConfig()  # the shipped default cadence
FOCUS = ("moving", "static-noise", "frozen", "frozen-noisy", "blurred")
# What each scene must read as, sample by sample (None: no expectation for that figure).
TRUTH = {
    "moving": "online",
    "static-noise": "online",
    "dim": "online",
    "frozen": "frozen",
    "frozen-noisy": "frozen",
    "black": "black",
    "blurred": "tampered",
}


@dataclass(slots=True)
class Case:
    label: str
    spec: ClipSpec
    scene: str


@dataclass(slots=True)
class Result:
    case: Case
    diff: list[float] = field(default_factory=list)  # chosen: half resolution, trimmed
    repeat: list[float] = field(default_factory=list)  # smallest diff vs the last 3 keyframes
    diff160: list[float] = field(default_factory=list)  # rejected: plain mean at 160 px
    p_ratio: list[float] = field(default_factory=list)
    p_bytes: list[float] = field(default_factory=list)
    key_bytes: list[int] = field(default_factory=list)
    luma: list[float] = field(default_factory=list)
    dark: list[float] = field(default_factory=list)
    sharp: list[float] = field(default_factory=list)  # chosen
    lapvar160: list[float] = field(default_factory=list)  # rejected: raw Laplacian variance, 160 px
    lapvar_full: list[float] = field(default_factory=list)  # rejected: raw, full size
    decode_ms: list[float] = field(default_factory=list)
    measure_ms: list[float] = field(default_factory=list)
    jpeg_ms: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)  # every keyframe, lead included, for the rules
    keys: list[Key] = field(default_factory=list)  # every keyframe's packet figures and picture, for the cadence


@dataclass(slots=True)
class Key:
    """One keyframe as the monitor would see it: packet figures, and the picture if it decodes it."""

    gop: Gop
    reference: np.ndarray
    luma: float
    dark: float
    sharp: float
    contrast: float


def run_case(case: Case) -> Result:
    res = Result(case)
    spec = case.spec
    with tempfile.TemporaryDirectory() as tmp:
        script = [Part("moving", LEAD_S), Part(case.scene, SCENE_S)]  # type: ignore[arg-type]
        path = make_health_clip(Path(tmp) / "c.mp4", script, spec)
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            dec = open_keyframe_decoder(vs.codec_context)  # the sampler's own settings
            tb = float(vs.time_base or 0)
            gop_s = spec.gop / spec.fps
            prev_small: np.ndarray | None = None
            refs: list[np.ndarray] = []
            p_sizes: list[int] = []
            for pkt in c.demux(vs):
                if pkt.size == 0:
                    continue
                if not pkt.is_keyframe:
                    p_sizes.append(pkt.size)
                    continue
                t0 = time.process_time()
                frame = decode_keyframe(dec, pkt)
                t1 = time.process_time()
                assert frame is not None
                pic = measure_picture(frame, CFG.black_luma)
                diffs = [trimmed_diff(pic.reference, r) or 0.0 for r in refs[-3:]]
                t2 = time.process_time()
                snapshot_jpeg(frame)
                t3 = time.process_time()
                res.decode_ms.append((t1 - t0) * 1e3)
                res.measure_ms.append((t2 - t1) * 1e3)
                res.jpeg_ms.append((t3 - t2) * 1e3)
                y = luma_plane(frame)
                small = shrink(y, SMALL_WIDTH)
                t = (pkt.pts or 0) * tb
                pm = float(statistics.median(p_sizes)) if p_sizes else None
                figs = Figures(
                    diff=diffs[-1] if diffs else None,
                    repeat=min(diffs) if diffs else None,
                    luma=pic.luma,
                    dark_fraction=pic.dark_fraction,
                    sharpness=pic.sharpness,
                    contrast=pic.contrast,
                    p_ratio=pm / pkt.size if pm is not None else None,
                )
                res.samples.append(Sample(t, figs))
                res.keys.append(
                    Key(Cadence.gop(t, pkt.size, p_sizes), pic.reference, pic.luma, pic.dark_fraction, pic.sharpness, pic.contrast)
                )
                if t >= LEAD_S + 0.01:  # this keyframe shows the scene
                    res.luma.append(pic.luma)
                    res.dark.append(pic.dark_fraction)
                    res.sharp.append(pic.sharpness)
                    res.lapvar160.append(laplacian_variance(small))
                    res.lapvar_full.append(laplacian_variance(y))
                if prev_small is not None and t - gop_s >= LEAD_S + 0.01:  # so does the previous one
                    res.diff.append(diffs[-1])
                    res.repeat.append(min(diffs[-3:]))
                    res.diff160.append(float(cv2.absdiff(small, prev_small).mean()))
                    res.p_bytes.append(pm or 0.0)
                    res.key_bytes.append(pkt.size)
                    res.p_ratio.append((pm or 0.0) / pkt.size)
                refs.append(pic.reference)
                prev_small = small
                p_sizes = []
    return res


def grid(quick: bool) -> list[Case]:
    sizes = [(320, 240), (640, 360)] if quick else [(320, 240), (640, 360), (1280, 720)]
    gops = [50] if quick else [25, 50, 100]
    cases = [Case(f"{w}x{h} gop{g}", ClipSpec(w, h, gop=g), s) for (w, h) in sizes for g in gops for s in SCENES]
    kbps = {320: 400, 640: 1000, 1280: 2000, 1920: 4000}
    for w, h in sizes:
        cases += [Case(f"{w}x{h} gop50 cbr", ClipSpec(w, h, bitrate_kbps=kbps[w]), s) for s in SCENES]
    base = ClipSpec(640, 360, gop=50)
    variants = {
        "640x360 gop50 cbr-zerolatency": replace(base, bitrate_kbps=1000, tune="zerolatency"),
        "640x360 gop50 x264enc-like": replace(base, bitrate_kbps=2048, tune="zerolatency"),
        "640x360 gop50 cbr-qpmin20": replace(base, bitrate_kbps=1000, extra_params="qpmin=20"),
        "640x360 gop50 hevc": replace(base, codec="hevc", crf=28),
        "640x360 gop50 bframes2": replace(base, bframes=2),
        "640x360 gop50 crf18": replace(base, crf=18),
        "640x360 gop50 crf35": replace(base, crf=35),
        "640x360 gop50 no-osd": replace(base, clock=False),
    }
    if quick:
        variants = {k: v for k, v in variants.items() if k.endswith(("x264enc-like", "hevc"))}
    cases += [Case(label, spec, s) for label, spec in variants.items() for s in FOCUS]
    if not quick:
        for lab, spec in (
            ("1920x1080 gop50", ClipSpec(1920, 1080)),
            ("1920x1080 gop50 cbr", ClipSpec(1920, 1080, bitrate_kbps=4000)),
        ):
            cases += [Case(lab, spec, s) for s in ("moving", "static-noise", "frozen", "frozen-noisy", "blurred")]
    return cases


def _med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _span(xs: list[float], fmt: str) -> str:
    if not xs:
        return "-"
    return f"{_med(xs):{fmt}} ({min(xs):{fmt}}–{max(xs):{fmt}})"


def print_table(results: list[Result]) -> None:
    print("## Figures per clip: median (min–max) over its keyframes\n")
    print(
        "| clip | scene | diff (half res, trimmed) | repeat (min of last 3) | diff 160 px plain | P/key | median P B | luma | dark % | sharpness | lapvar 160 | lapvar full |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.case.label} | {r.case.scene} | {_span(r.diff, '.2f')} | {_span(r.repeat, '.2f')} | {_span(r.diff160, '.2f')} "
            f"| {_span(r.p_ratio, '.3f')} | {_med(r.p_bytes):,.0f} | {_med(r.luma):.0f} | {100 * _med(r.dark):.1f} "
            f"| {_med(r.sharp):.3f} | {_med(r.lapvar160):.0f} | {_med(r.lapvar_full):.0f} |"
        )


def print_margins(results: list[Result]) -> None:
    by = {(r.case.label, r.case.scene): r for r in results}
    labels = list(dict.fromkeys(r.case.label for r in results))
    print("\n## Margins per clip\n")
    print("Quiet = static scene with σ=2 noise (must stay online); frozen = worst of `frozen`, `frozen-noisy`.\n")
    print(
        "| clip | quiet min diff | frozen max diff | frozen max repeat | quiet min diff 160 plain | frozen max diff 160 plain | quiet min P/key | frozen max P/key | blurred/moving sharpness | raw lapvar 160 | dim/quiet sharpness | raw lapvar 160 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lab in labels:
        q = by.get((lab, "static-noise"))
        fz = [by[(lab, s)] for s in ("frozen", "frozen-noisy") if (lab, s) in by]
        if q is None or not fz:
            continue
        mv, bl, dm = by.get((lab, "moving")), by.get((lab, "blurred")), by.get((lab, "dim"))
        blur = (
            f"{_med(bl.sharp) / _med(mv.sharp):.3f} | {_med(bl.lapvar160) / _med(mv.lapvar160):.3f}"
            if mv and bl
            else "- | -"
        )
        dim = f"{_med(dm.sharp) / _med(q.sharp):.2f} | {_med(dm.lapvar160) / _med(q.lapvar160):.2f}" if dm else "- | -"
        print(
            f"| {lab} | {min(q.diff):.2f} | {max(max(f.diff) for f in fz):.2f} | {max(max(f.repeat) for f in fz):.2f} "
            f"| {min(q.diff160):.2f} "
            f"| {max(max(f.diff160) for f in fz):.2f} | {min(q.p_ratio):.3f} | {max(max(f.p_ratio) for f in fz):.3f} "
            f"| {blur} | {dim} |"
        )


class AdaptiveReplay:
    """The monitor's sampling loop without the monitor: cadence, look-back, references, rules."""

    def __init__(self, cfg: HealthConfig) -> None:
        self.cadence = Cadence(cfg)
        self.rules = HealthRules(cfg, start_t=0.0)
        self.refs: list[np.ndarray] = []
        self.kept: list[tuple[Key, Gop]] = []
        self.decoded = self.keyframes = 0

    def feed(self, k: Key, offset: float) -> list[Verdict]:
        g = replace(k.gop, t=k.gop.t + offset)
        self.keyframes += 1
        why = self.cadence.decide(g, alert=self.rules.pending)
        if why is None:
            self.kept = [*self.kept[-(MAX_KEPT - 1) :], (k, g)]
            return []
        todo = (self.kept if looks_back(why) else []) + [(k, g)]
        self.kept = []
        out = []
        for kk, gg in todo:
            self.decoded += 1
            diffs = [trimmed_diff(kk.reference, r) or 0.0 for r in self.refs[-3:]]
            self.refs = [*self.refs[-2:], kk.reference]
            figs = Figures(
                diff=diffs[-1] if diffs else None,
                repeat=min(diffs) if diffs else None,
                luma=kk.luma,
                dark_fraction=kk.dark,
                sharpness=kk.sharp,
                contrast=kk.contrast,
                p_ratio=gg.p_ratio,
                p_median_bytes=gg.p_median,
                keyframe_bytes=gg.key_bytes,
            )
            if (v := self.rules.feed(Sample(gg.t, figs))) is not None:
                out.append(v)
        return out


def print_verdicts(results: list[Result], adaptive: bool = False) -> None:
    """Replay each clip's samples through HealthRules with the default settings.

    The camera's history is the `moving` clip of the same encoding (so the sharpness baseline
    exists), then the scene's clip: 2 s moving, then the scene from t = 0 below. `adaptive`: through
    the decode cadence of the shipped default, as the monitor runs it.
    """
    cfg = ADAPTIVE if adaptive else CFG
    mode = f"adaptive cadence, sample_interval_s {cfg.sample_interval_s:g}" if adaptive else "every keyframe decoded"
    print(
        f"\n## Verdicts of the default settings, {mode} (freeze_diff {cfg.freeze_diff}, freeze_after_s {cfg.freeze_after_s:g}, "
        f"black_after_s {cfg.black_after_s:g}, tamper_after_s {cfg.tamper_after_s:g}, tamper_ratio {cfg.tamper_ratio})\n"
    )
    print("Latency: from the scene's first frame to the verdict. A wrong row is a false alarm or a miss.\n")
    print("| clip | scene | truth | states after the scene began | latency s | keyframes decoded | right |")
    print("|---|---|---|---|---|---|---|")
    by = {(r.case.label, r.case.scene): r for r in results}
    misses = alarms = 0
    worst: dict[str, float] = {}
    decoded_quiet: list[float] = []
    for r in results:
        mv = by.get((r.case.label, "moving"))
        history = list(mv.samples) if mv and mv is not r else []
        offset = (history[-1].t + r.case.spec.gop / r.case.spec.fps) if history else 0.0
        scene_t = offset + LEAD_S
        path: list[tuple[str, float]] = []
        if adaptive:
            rep_ = AdaptiveReplay(cfg)
            for k in mv.keys if mv and mv is not r else []:
                rep_.feed(k, 0.0)
            before = (rep_.decoded, rep_.keyframes)
            for k in r.keys:
                for v in rep_.feed(k, offset):
                    if v.detected >= scene_t:
                        path.append((v.state, v.detected - scene_t))
            share = f"{rep_.decoded - before[0]}/{rep_.keyframes - before[1]}"
            if TRUTH[r.case.scene] == "online":
                decoded_quiet.append((rep_.decoded - before[0]) / max(1, rep_.keyframes - before[1]))
        else:
            rules = HealthRules(cfg, start_t=0.0)
            for smp in history:
                rules.feed(smp)
            for smp in r.samples:
                v = rules.feed(Sample(smp.t + offset, smp.figures))
                if v is not None and v.detected >= scene_t:
                    path.append((v.state, v.detected - scene_t))
            share = f"{len(r.samples)}/{len(r.samples)}"
        truth = TRUTH[r.case.scene]
        states = [p for p, _ in path]
        if truth == "online":
            right = not states
            alarms += not right
            lat = "-"
        else:
            right = states[-1:] == [truth]
            misses += not right
            lat_s = next((t for p, t in path if p == truth), None)
            lat = f"{lat_s:.1f}" if lat_s is not None else "-"
            if lat_s is not None:
                worst[truth] = max(worst.get(truth, 0.0), lat_s)
        print(
            f"| {r.case.label} | {r.case.scene} | {truth} | {' → '.join(states) or '(online)'} | {lat} | {share} | {'yes' if right else 'NO'} |"
        )
    print(f"\nFalse alarms: {alarms}; faults missed: {misses} (of {len(results)} clips).")
    print("Worst latency per fault: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(worst.items())))
    if decoded_quiet:
        print(f"Share of keyframes decoded on live scenes (incl. the 2 s lead and warm-up): median {_med(decoded_quiet):.0%}, max {max(decoded_quiet):.0%}")


def print_costs(results: list[Result]) -> None:
    print("\n## Cost per sampled keyframe (ms of CPU, median, one thread; H.264 CRF clips)\n")
    print("| size | decode keyframe | figures | snapshot JPEG |")
    print("|---|---|---|---|")
    for size in dict.fromkeys(f"{r.case.spec.width}x{r.case.spec.height}" for r in results):
        rs = [
            r
            for r in results
            if f"{r.case.spec.width}x{r.case.spec.height}" == size
            and r.case.spec.codec == "h264"
            and not r.case.spec.bitrate_kbps
        ]
        dec = [x for r in rs for x in r.decode_ms[1:]]
        mea = [x for r in rs for x in r.measure_ms[1:]]
        jpg = [x for r in rs for x in r.jpeg_ms[1:]]
        print(f"| {size} | {_med(dec):.2f} | {_med(mea):.2f} | {_med(jpg):.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two sizes, GOP 50 only, two variants")
    ap.add_argument("--jobs", type=int, default=2, help="processes (each case runs on one core)")
    args = ap.parse_args(argv)
    cases = grid(args.quick)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_case, cases))
    print(
        f"# Health thresholds bench: {len(cases)} clips of {LEAD_S:.0f} s moving + {SCENE_S:.0f} s scene; "
        f"av {av.__version__}, OpenCV {cv2.__version__}; {time.perf_counter() - t0:.0f} s\n"
    )
    print_table(results)
    print_margins(results)
    print_verdicts(results)
    print_verdicts(results, adaptive=True)
    print_costs(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
