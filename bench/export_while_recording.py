"""Benchmark 9 — export while recording: what an evidence export costs the recorders.

A real `vigil run` records N cameras (720p25 `file:` mounts of the bench clip looped for minutes,
to SeaweedFS, health sampler on, 2 worker processes) until an incident's minutes are recorded and
stored; then K rounds of two windows each, their order alternating (b a, a b, b a, …):
(a) recording only; (b) recording while exports of that incident (C cameras × M minutes, through
the API: `POST /api/incidents` once, then `POST /api/incidents/{id}/exports` and
`GET /api/exports/{id}` every 0.5 s) run back to back until the window is at least W s long
(window (a) then lasts as long as the last (b)). Window (a) polls a missing export at the same
pace, so the API answers the same requests in both.

Metered per window: the **worker processes** (the recorders; per camera, % of one core) — the
subject, whose (b) ÷ (a) per round is the figure, with median and spread; vigil's main process
(supervisor, uploader); the API process, where the export job runs, split into the job's threads
(nice 10, `bench.common.ThreadMeter`) and the rest; SeaweedFS; the RTSP server; the whole machine.
After the run, from the catalog, every segment closed in each window: frames lost (fewer frames
than its duration holds), breaks (a new run, or media time not continuing, between two of a
camera's segments), cameras with none, upload lag (stored − end) and the recorder's drift at each
segment's last keyframe (wall minus media clock: a recorder reading late shows it here).

    .venv/bin/python bench/export_while_recording.py            # 20 cameras; 10 × 5 min exports; 3 rounds (~11 min)
    .venv/bin/python bench/export_while_recording.py --quick    # 4 cameras; 2 × 30 s; 3 short rounds (< 2 min)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH_CLIP_S,
    CLIP_FPS,
    RESULTS,
    ThreadMeter,
    TreeMeter,
    _busy,
    _py_spy,
    clip_720p,
    clip_looped,
    loadavg,
    machine,
    md_table,
    median,
    pct,
    save_result,
    serve_files,
    top_frames,
    wait_quiet,
)

NO_EXPORT = "0" * 24  # a well-formed export id that does not exist: window (a)'s poll (404)
POLL_S = 0.5  # the page's pace


@dataclass(slots=True)
class Export:
    id: str
    state: str
    seconds: float  # the job's own (created → finished, the catalog's times)
    mb: float
    error: str = ""


@dataclass(slots=True)
class Window:
    round: int
    kind: str  # "a" recording only | "b" recording + export
    w0_us: int
    w1_us: int
    seconds: float
    load: float
    workers_cpu_s: float
    main_cpu_s: float
    api_other_cpu_s: float  # the API process but the export's threads
    export_cpu_s: float  # the API process's niced threads: the export job
    s3_cpu_s: float
    rtsp_cpu_s: float
    machine_pct: float  # every process, % of one core
    export_nices: list[int]
    poll_ms: list[float]
    exports: list[Export] = field(default_factory=list)
    seg: dict[str, Any] = field(default_factory=dict)  # account(): what the catalog holds for it

    def per_cam(self, n: int) -> float:
        """The recorders' CPU per camera, % of one core."""
        return 100.0 * self.workers_cpu_s / self.seconds / n


def account(segs: Sequence[Any], w0_us: int, w1_us: int, cameras: Sequence[str], fps: int = CLIP_FPS) -> dict[str, Any]:
    """What the catalog holds for a window: its segments (closed in (w0, w1]), frames lost, breaks,
    cameras without one, upload lag and drift. `segs`: `Segment`s of every camera, any state."""
    frame_us = 1_000_000 // fps
    by_cam: dict[str, list[Any]] = {}
    for s in sorted(segs, key=lambda s: s.start_us):
        by_cam.setdefault(s.camera_id, []).append(s)
    closed = [s for s in segs if w0_us < s.end_us <= w1_us]
    lost = sum(max(0, round((s.end_us - s.start_us) / frame_us) - s.frames) for s in closed)
    breaks = 0
    for cam in by_cam.values():
        for prev, nxt in pairwise(cam):
            if not w0_us < nxt.end_us <= w1_us:
                continue
            media_gap = nxt.media_start_us - (prev.media_start_us + prev.end_us - prev.start_us)
            if nxt.run_id != prev.run_id or abs(media_gap) > frame_us // 2:
                breaks += 1
    silent = [c for c in cameras if not any(w0_us < s.end_us <= w1_us for s in by_cam.get(c, []))]
    lag = [(s.stored_us - s.end_us) / 1e6 for s in closed if s.stored_us is not None]
    drift = [s.drift_us / 1e3 for s in closed if s.drift_us is not None]
    return {
        "segments": len(closed),
        "frames": sum(s.frames for s in closed),
        "lost": lost,
        "breaks": breaks,
        "silent": len(silent),
        "unstored": sum(1 for s in closed if s.state != "stored"),
        "lag_med_s": median(lag) if lag else None,
        "lag_max_s": max(lag) if lag else None,
        "drift_p95_ms": pct(drift, 95) if drift else None,
        "drift_max_ms": max(drift) if drift else None,
    }


class Rig:
    """The running service and what a window meters."""

    def __init__(self, vp: Any, s3: Any, mounts: Any, http: Any, incident_id: int, processes: int) -> None:
        from harness.vigilproc import wait_until

        self.vp, self.http, self.incident_id = vp, http, incident_id
        self.workers: list[int] = wait_until(lambda: len(w := vp.worker_pids()) == processes and w, 30, 0.5,
                                             f"{processes} worker processes")
        api = vp.api_pid()
        assert api is not None, "no API process"
        self.api = api
        self.main = vp.proc.pid
        self.s3_pid, self.rtsp_pids = s3.pid, mounts.pids()
        self.exports_dir = vp.workdir / "exports"  # evidence.exports_path's default: {data_dir}/exports

    def measure(self, rnd: int, kind: str, min_s: float) -> Window:
        """One window: (a) recording only for `min_s`; (b) exports back to back until `min_s` has
        passed and the running one is done."""
        workers = TreeMeter(lambda: self.workers, recursive=False)
        main = TreeMeter(lambda: [self.main], recursive=False)
        s3 = TreeMeter(lambda: [self.s3_pid] if self.s3_pid else [])
        rtsp = TreeMeter(lambda: self.rtsp_pids)
        api = ThreadMeter(self.api)
        meters = (workers, main, s3, rtsp)
        load = loadavg()
        polls: list[float] = []
        done: list[str] = []
        running: str | None = None
        b0, m0 = _busy()
        for m in meters:
            m.start()
        api.start()
        w0 = int(time.time() * 1e6)
        t0 = next_poll = time.monotonic()
        while True:
            now = time.monotonic()
            if running is None and now - t0 >= min_s:
                break
            if kind == "b" and running is None:
                r = self.http.post(f"/api/incidents/{self.incident_id}/exports")
                assert r.status_code == 202, r.text
                running = r.json()["id"]
            if now >= next_poll:
                next_poll += POLL_S
                tp = time.perf_counter()
                r = self.http.get(f"/api/exports/{running or NO_EXPORT}")
                polls.append((time.perf_counter() - tp) * 1e3)
                if running is not None and r.json()["state"] in ("done", "failed"):
                    done.append(running)
                    running = None
                    continue
            api.sample()
            time.sleep(max(0.0, min(0.25, next_poll - time.monotonic())))
        for m in meters:
            m.stop()
        api.stop()
        w1 = int(time.time() * 1e6)
        b1, m1 = _busy()
        win = Window(rnd, kind, w0, w1, workers.wall_s, load, workers.cpu_s, main.cpu_s, api.other_s, api.niced_s,
                     s3.cpu_s, rtsp.cpu_s, 100.0 * (b1 - b0) / (m1 - m0), sorted(api.nices), polls)
        for eid in done:
            j = self.http.get(f"/api/exports/{eid}").json()
            secs = (j["finished_us"] - j["created_us"]) / 1e6 if j["finished_us"] else float("nan")
            win.exports.append(Export(eid, j["state"], secs, (j["bytes"] or 0) / 1e6, j["error"]))
            shutil.rmtree(self.exports_dir / eid, ignore_errors=True)  # after the window: 100s of MB each
        return win

    def profile(self, out: Path, seconds: float) -> None:
        """py-spy (`--gil --threads`, raw) on the workers and the API process while an export runs —
        after the measured windows, never in one: sampling a process inflates its CPU time."""
        r = self.http.post(f"/api/incidents/{self.incident_id}/exports")
        assert r.status_code == 202, r.text
        eid = r.json()["id"]
        for p in _py_spy([*self.workers, self.api], seconds, out, "export"):
            p.wait(seconds + 30)
        state = self.http.get(f"/api/exports/{eid}").json()["state"]
        print(f"  profiles in {out} (export {state} when py-spy stopped):", flush=True)
        for pid in [*self.workers, self.api]:
            print(f"  pid {pid} ({'API' if pid == self.api else 'worker'}):", flush=True)
            for f, sp, inc in top_frames([out / f"export-pid{pid}.txt"], 12):
                print(f"    {sp:5.1f} % self {inc:5.1f} % incl  {f}", flush=True)
        from harness.vigilproc import wait_until

        wait_until(lambda: self.http.get(f"/api/exports/{eid}").json()["state"] in ("done", "failed"), 600, 1.0, "the export")
        shutil.rmtree(self.exports_dir / eid, ignore_errors=True)


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cameras", type=int, default=20, help="cameras recording")
    ap.add_argument("--export-cameras", type=int, default=10, help="cameras in the incident")
    ap.add_argument("--minutes", type=float, default=5.0, help="the incident's length")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=30.0, help="seconds: (b) runs exports at least this long")
    ap.add_argument("--pause", type=float, default=5.0, help="seconds between two windows")
    ap.add_argument("--segment", type=float, default=10.0, help="recording.segment_seconds")
    ap.add_argument("--processes", type=int, default=2, help="worker processes")
    ap.add_argument("--no-health", action="store_true", help="health sampler off")
    ap.add_argument("--max-load", type=float, default=2.0, help="wait (≤ 5 min) for the 1-min load below this first")
    ap.add_argument("--profile", type=Path, default=None,
                    help="after the rounds, py-spy the workers and the API process during one more export (into DIR)")
    ap.add_argument("--quick", action="store_true", help="4 cameras, 2 × 30 s exports, 5 s windows (< 2 min)")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.export_cameras, args.minutes = 4, 2, 0.5
        args.window, args.pause, args.segment, args.max_load = 5.0, 1.0, 4.0, float("inf")
    n, c = args.cameras, min(args.export_cameras, args.cameras)

    import httpx

    from harness.servers import SeaweedS3
    from harness.vigilproc import VigilProcess, wait_until
    from storage.api_keys import create_key

    # the stream must outlast: connect, the incident's minutes + a segment + upload, every window
    # (an export may take minutes on a loaded machine), the last segments' close
    need_s = 60 + args.minutes * 60 + args.rounds * (2 * args.window + 4 * args.pause + 240) + 120
    clip = clip_looped(clip_720p(BENCH_CLIP_S), max(need_s, 24 * 60))  # one cached file for --quick and full
    print(f"# Export while recording: {n} cameras recording, exports of {c} × {args.minutes:g} min, "
          f"{args.rounds} rounds — {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-export-rec-"))
    s3 = SeaweedS3(work / "s3", bucket="vigil-bench")
    windows: list[Window] = []
    try:
        with serve_files(clip.path, n) as mounts:
            cams = [{"id": f"cam{i:03d}", "url": u} for i, u in enumerate(mounts.urls)]
            vp = VigilProcess(
                work / "vigil", cams, s3=s3,
                recording={"segment_seconds": args.segment},
                # a file mount ends after the clip: a camera that stops stays stopped (a break, counted)
                workers={"processes": args.processes, "backoff_initial_s": 600.0, "backoff_max_s": 600.0},
                spool={"path": str(work / "vigil" / "spool"), "max_bytes": "20GB"},
                health={"enabled": not args.no_health},
            )
            load0 = wait_quiet(args.max_load, timeout_s=300, what="vigil run")
            with vp, httpx.Client(base_url=vp.url, timeout=60) as http:
                http.headers["Authorization"] = f"Bearer {create_key(vp.catalog, 'investigator', 'bench')}"
                ids = [x["id"] for x in cams[:c]]
                cat = vp.catalog

                def firsts() -> list[int] | None:
                    got = [cat.segments_for(i, stored_only=True) for i in ids]
                    return [s[0].start_us for s in got] if all(got) else None

                t0 = time.monotonic()
                start_us = max(wait_until(firsts, 120, 1.0, "every incident camera's first stored segment")) + 1_000_000
                end_us = start_us + int(args.minutes * 60e6)
                print(f"  recording; the incident's {args.minutes:g} min being recorded…", flush=True)
                wait_until(lambda: all(any(s.end_us >= end_us for s in cat.segments_for(i, stored_only=True)) for i in ids),
                           args.minutes * 60 + 4 * args.segment + 120, 1.0, "the incident's window recorded and stored")
                r = http.post("/api/incidents", json={"name": "bench", "start": start_us / 1e6, "end": end_us / 1e6,
                                                      "cameras": ids})
                assert r.status_code == 201, r.text
                inc = r.json()
                recorded = [x["recorded_s"] for x in inc["cameras"]]
                print(f"  incident {inc['id']}: {len(recorded)} cameras, {min(recorded):.1f}–{max(recorded):.1f} s "
                      f"recorded each, {sum(len(x['gaps']) for x in inc['cameras'])} gaps "
                      f"({time.monotonic() - t0:.0f} s after the first segment)", flush=True)
                rig = Rig(vp, s3, mounts, http, inc["id"], args.processes)
                last_b = args.window
                for rnd in range(args.rounds):
                    for kind in ("b", "a") if rnd % 2 == 0 else ("a", "b"):
                        time.sleep(args.pause)
                        w = rig.measure(rnd, kind, args.window if kind == "b" else last_b)
                        if kind == "b":
                            last_b = w.seconds
                        windows.append(w)
                        print(f"  round {rnd + 1} ({kind}) {w.seconds:.1f} s: recorders {w.per_cam(n):.4f} % per camera, "
                              f"export threads {w.export_cpu_s:.1f} CPU s, "
                              f"exports {[f'{e.seconds:.1f} s {e.state}' for e in w.exports]}, load {w.load:.2f}",
                              flush=True)
                last_end = windows[-1].w1_us
                if args.profile is not None:
                    rig.profile(args.profile, args.window)

                def settled() -> list[Any] | None:
                    segs = cat.segments_for()
                    closed = [s for s in segs if s.end_us <= last_end]
                    # every camera has closed a segment past the last window, all stored
                    past = {s.camera_id for s in segs if s.end_us > last_end}
                    return segs if len(past) == n and all(s.state == "stored" for s in closed) else None

                time.sleep(args.segment)
                segs = wait_until(settled, 4 * args.segment + 60, 1.0, "the windows' segments stored")
                for w in windows:
                    w.seg = account(segs, w.w0_us, w.w1_us, [x["id"] for x in cams])
                runs = {(s.camera_id, s.run_id) for s in segs}
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    ratios, exp_s, exp_cpu, exp_mb = [], [], [], []
    for rnd in range(args.rounds):
        a, b = (next(w for w in windows if w.round == rnd and w.kind == k) for k in "ab")
        ratios.append(b.per_cam(n) / a.per_cam(n))
        exp_s += [e.seconds for e in b.exports]
        exp_mb += [e.mb for e in b.exports]
        exp_cpu.append(b.export_cpu_s / max(1, len(b.exports)))
        for w in (a, b):
            s = w.seg
            rows.append([
                rnd + 1, "(b) + export" if w.kind == "b" else "(a) recording", f"{w.seconds:.1f}", f"{w.load:.2f}",
                f"**{w.per_cam(n):.4f}**", f"**{ratios[-1]:.3f}**" if w.kind == "b" else "",
                f"{100 * w.main_cpu_s / w.seconds:.1f}", f"{100 * w.api_other_cpu_s / w.seconds:.1f}",
                f"{100 * w.export_cpu_s / w.seconds:.1f}", f"{100 * w.s3_cpu_s / w.seconds:.1f}",
                f"{w.machine_pct:.0f}",
                " / ".join(f"{e.seconds:.1f}" + ("" if e.state == "done" else f" {e.state}") for e in w.exports) or "-",
                f"{s['segments']} / {s['lost']} / {s['breaks']} / {s['silent']}",
                f"{_fmt(s['lag_med_s'], '.1f')} / {_fmt(s['lag_max_s'], '.1f')}",
                f"{_fmt(s['drift_p95_ms'], '.0f')} / {_fmt(s['drift_max_ms'], '.0f')}",
                f"{median(w.poll_ms):.0f} / {max(w.poll_ms):.0f}" if w.poll_ms else "-",
            ])
    head = ["round", "window", "s", "load", "recorders % of a core per camera", "(b) ÷ (a)", "main %", "API (not export) %",
            "export threads %", "SeaweedFS %", "machine %", "exports, s each", "segments / frames lost / breaks / silent cameras",
            "upload lag median / max s", "recorder drift p95 / max ms", "poll ms median / max"]
    table = md_table(head, rows)
    nices = sorted({x for w in windows for x in w.export_nices})
    summary = (
        f"recorders (b) ÷ (a): median **{median(ratios):.3f}** (rounds {' / '.join(f'{x:.3f}' for x in ratios)}; "
        f"spread {min(ratios):.3f}–{max(ratios):.3f}); export of {c} × {args.minutes:g} min: "
        f"{median(exp_s):.1f} s median ({min(exp_s):.1f}–{max(exp_s):.1f}, {len(exp_s)} exports, "
        f"{median(exp_mb):.0f} MB each), {median(exp_cpu):.1f} CPU s of its threads per export (median per round), "
        f"at nice {nices or '? (no niced thread seen)'}; runs recorded {len(runs)} for {n} cameras "
        f"(more = a reconnect); load at start {load0:.2f}"
    )
    print()
    print(table)
    print()
    print(summary)
    name = "export_while_recording" + ("-quick" if args.quick else "")
    save_result(name, {"args": vars(args), "ratios": ratios, "windows": [asdict(w) for w in windows],
                       "export_s": exp_s, "runs": len(runs), "load_at_start": load0})
    (RESULTS / f"{name}.txt").write_text(table + "\n\n" + summary + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
