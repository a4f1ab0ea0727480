"""Benchmark 6 — detection latency of the health sampler for frozen, black and dropped feeds, over
20 injected faults of each kind, with the default health settings (vigil/settings.HealthConfig:
freeze_after_s 10, black_after_s 5, stall_timeout_s 5, every keyframe sampled).

Cameras: live synthetic cameras (camserver/server.py `synthetic:` — moving scene, on-screen clock,
x264 constant QP, GOP 50 at 25 fps, so a keyframe every 2 s), one camserver process per camera so a
drop of one does not touch the others; by default 4 cameras at 640×360 (a 720p synthetic camera
costs ~14 % of a core to encode; `--size 1280x720` uses 720p), each taking 5 rounds of
freeze → recover → black → recover → drop → recover → hang → recover. A `vigil run` records them
(local store). Each injection waits for the camera to be online, then 4–6 s (a random phase
against the 2 s keyframe period).

Injection: freeze/black through RtspServer.set_mode (returns once the server applied it); drop by
stopping the camera's server (SIGTERM: it closes the connection, so the reconnect is refused; it is
restarted on the same port to recover); hang by SIGSTOP of the server (TCP stays open, nothing
flows: a cut link or a hung camera, where stall_timeout_s applies; SIGCONT to recover). Detection: the
state event's `detected_us` (the sampler's clock when it decided) in the catalog. Latency =
detected − injected; "beyond" = latency − the configured duration, i.e. what the sampler adds.

    /tmp/venv/bin/python bench/detection_latency.py                 # 20 faults of each kind, ~5 min
    /tmp/venv/bin/python bench/detection_latency.py --quick         # 2 cameras × 2 rounds
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import md_table, machine, median, pct, save_result, wait_quiet  # noqa: E402
from harness.servers import RtspServer  # noqa: E402
from core.settings import HealthConfig  # noqa: E402

KINDS = {"freeze": "frozen", "black": "black", "drop": "offline", "hang": "offline"}


@dataclass
class Fault:
    camera: str
    kind: str
    injected_us: int
    inject_call_s: float  # how long the injection call took (set_mode's round trip, or stop())
    detected_us: int | None = None
    state_seen: str | None = None
    recovered_s: float | None = None


@dataclass
class Cam:
    id: str
    server: RtspServer
    faults: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Events:
    """Reads state events from the catalog (read-only connection per call)."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def after(self, camera: str, min_id: int) -> list[tuple[int, str, int | None]]:
        try:
            c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
            try:
                rows = c.execute(
                    "SELECT id, to_state, figures FROM events WHERE camera_id=? AND kind='state' AND id>? ORDER BY id",
                    (camera, min_id),
                ).fetchall()
            finally:
                c.close()
        except sqlite3.Error:
            return []
        out = []
        for i, st, figs in rows:
            f = json.loads(figs) if isinstance(figs, str) else (figs or {})
            out.append((int(i), str(st), f.get("detected_us")))
        return out

    def last_id(self, camera: str) -> int:
        ev = self.after(camera, 0)
        return ev[-1][0] if ev else 0

    def state(self, camera: str) -> str | None:
        ev = self.after(camera, 0)
        return ev[-1][1] if ev else None


def wait_state(ev: Events, camera: str, state: str, min_id: int, timeout: float) -> tuple[int, str, int | None] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in ev.after(camera, min_id):
            if e[1] == state:
                return e
        time.sleep(0.1)
    return None


def run_camera(cam: Cam, ev: Events, rounds: int, kinds: list[str], settle_s: float, timeout_s: float) -> None:
    for r in range(rounds):
        for kind in kinds:
            # steady and online first
            t = time.monotonic()
            while ev.state(cam.id) != "online" and time.monotonic() - t < 90:
                time.sleep(0.2)
            if ev.state(cam.id) != "online":
                cam.errors.append(f"round {r} {kind}: camera not online before injection")
                continue
            # a random phase against the keyframes (every 2 s): injecting a fixed time after the
            # online event (itself at a keyframe) would always hit the same point of the GOP
            time.sleep(settle_s + random.uniform(0.0, 2.0))
            last = ev.last_id(cam.id)
            t0 = time.time()
            if kind == "drop":
                cam.server.stop()  # SIGTERM: the server closes its connections and exits
            elif kind == "hang":
                cam.server.pause()  # SIGSTOP: TCP stays open, nothing flows (a cut link, a hung camera)
            else:
                cam.server.set_mode("/cam", kind)
            t1 = time.time()
            # set_mode returns once the new picture is applied: count from then. stop() returns once
            # the server has exited, which takes a while: the stream stopped when it began, so count
            # from the call.
            f = Fault(cam.id, kind, int((t0 if kind == "drop" else t1) * 1e6), t1 - t0)
            got = wait_state(ev, cam.id, KINDS[kind], last, timeout_s)
            if got is not None:
                f.detected_us, f.state_seen = got[2], got[1]
            cam.faults.append(f)
            last = got[0] if got else ev.last_id(cam.id)
            tr = time.monotonic()
            if kind == "drop":
                cam.server.start()
            elif kind == "hang":
                cam.server.resume()
            else:
                cam.server.set_mode("/cam", "normal")
            if wait_state(ev, cam.id, "online", last, 90) is not None:
                f.recovered_s = time.monotonic() - tr
            else:
                cam.errors.append(f"round {r} {kind}: no recovery to online within 90 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5, help="faults of each kind per camera")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds online before each injection")
    ap.add_argument("--quick", action="store_true", help="2 cameras × 2 rounds")
    ap.add_argument("--max-load", type=float, default=0.6)
    ap.add_argument("--health", nargs="*", default=[], metavar="KEY=VALUE",
                    help="health settings other than the defaults (e.g. sample_interval_s=4); reported")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.rounds = 2, 2
    w, h = (int(x) for x in args.size.split("x"))
    overrides = {k: float(v) for k, v in (x.split("=", 1) for x in args.health)}
    cfg = HealthConfig(**overrides)
    configured = {"freeze": cfg.freeze_after_s, "black": cfg.black_after_s, "drop": cfg.stall_timeout_s,
                  "hang": cfg.stall_timeout_s}

    from harness.vigilproc import VigilProcess

    print(f"# Detection latency — {machine()}", flush=True)
    print(f"{args.cameras} synthetic cameras {w}×{h} 25 fps GOP 50, {args.rounds} rounds each; health defaults: "
          f"freeze_after_s {cfg.freeze_after_s:g}, black_after_s {cfg.black_after_s:g}, stall_timeout_s {cfg.stall_timeout_s:g}, "
          f"recover_after_s {cfg.recover_after_s:g}, sample_interval_s {cfg.sample_interval_s:g} (0 = every keyframe)"
          + (f"; NOT the defaults: {overrides}" if overrides else ""), flush=True)
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-detect-"))
    cams: list[Cam] = []
    load = wait_quiet(args.max_load, what="detection latency")
    for i in range(args.cameras):
        srv = RtspServer({"/cam": f"synthetic:?w={w}&h={h}&fps=25&gop=50&seed={i + 1}"})
        cams.append(Cam(f"det{i}", srv))
    vp = VigilProcess(work / "vigil", [{"id": c.id, "url": c.server.url("/cam")} for c in cams],
                      workers={"processes": 2, "backoff_initial_s": 0.5, "backoff_max_s": 2.0},
                      recording={"segment_seconds": 60}, **({"health": overrides} if overrides else {}))
    vp.start(timeout=120)
    ev = Events(work / "vigil" / "catalog.db")
    t_start = time.monotonic()
    try:
        threads = [threading.Thread(target=run_camera, args=(c, ev, args.rounds, args.kinds, args.settle, 60.0))
                   for c in cams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        vp.stop()
        for c in cams:
            c.server.stop()
    elapsed = time.monotonic() - t_start

    rows = []
    summary = {}
    for kind in args.kinds:
        fs = [f for c in cams for f in c.faults if f.kind == kind]
        lat = [(f.detected_us - f.injected_us) / 1e6 for f in fs if f.detected_us is not None]
        missed = len(fs) - len(lat)
        beyond = [x - configured[kind] for x in lat]
        rec = [f.recovered_s for f in fs if f.recovered_s is not None]
        summary[kind] = {"n": len(fs), "latencies_s": lat, "missed": missed}
        rows.append([
            kind, KINDS[kind], f"{configured[kind]:g}", f"{len(lat)}/{len(fs)}",
            f"{median(lat):.2f}" if lat else "-", f"{pct(lat, 95):.2f}" if lat else "-", f"{max(lat):.2f}" if lat else "-",
            f"{median(beyond):+.2f}" if lat else "-", f"{pct(beyond, 95):+.2f}" if lat else "-",
            f"{median(rec):.1f}" if rec else "-",
        ])
    print()
    print(md_table(["fault", "state", "configured s", "detected", "p50 s", "p95 s", "max s", "p50 beyond configured",
                    "p95 beyond configured", "back online after restore, p50 s"], rows))
    inj = [f.inject_call_s for c in cams for f in c.faults]
    print(f"\n{sum(len(c.faults) for c in cams)} faults in {elapsed:.0f} s; injection calls took ≤ {max(inj) * 1e3:.0f} ms "
          f"(latency is counted from their return); load at start {load:.2f}")
    errors = [e for c in cams for e in c.errors]
    for e in errors:
        print("error:", e)
    save_result("detection_latency" + ("-quick" if args.quick else ""),
                {"args": vars(args), "configured_s": configured, "summary": summary, "errors": errors,
                 "faults": [f.__dict__ for c in cams for f in c.faults]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
