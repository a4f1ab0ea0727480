"""Shared pieces of the benchmarks: the machine, a quiet-machine gate, CPU/memory accounting of
process trees with psutil, the 720p test clip, fleets of `file:` RTSP mounts, one measured run of
`vigil run` (or of N reference ffmpeg processes) over a 40 s window, and markdown tables.

Why `file:` mounts: a live GStreamer 720p camera costs ~14 % of a core to *encode*, so 100 of them
cannot run on 2 cores. A mount of a pre-encoded clip is served without transcoding (~0.33 % of a
core per client, docs/design/platform.md §1.10), each client from the start, and ends at the end of the file — so
"frames the server sent" is simply the clip's frame count, and each camera's first run in the
catalog must hold exactly that many frames.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.servers import RtspServer, SeaweedS3  # noqa: E402

CACHE = Path(os.environ.get("VIGIL_BENCH_CACHE", "/tmp/vigil-bench"))
RESULTS = Path(__file__).resolve().parent / "results"
CLIP_SECONDS = 60
# the live benches' clip: long enough for connect + settle + a 40 s window at N = 100+
BENCH_CLIP_S = 90
CLIP_FPS = 25
CLIP_GOP = 50
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
PY_SPY = str(Path(sys.executable).parent / "py-spy")

__all__ = [
    "CACHE",
    "RESULTS",
    "Clip",
    "Mounts",
    "RunResult",
    "ThreadMeter",
    "TreeMeter",
    "clip_720p",
    "clip_looped",
    "fmt",
    "machine",
    "measure_bare",
    "measure_ffmpeg",
    "measure_vigil",
    "md_table",
    "pct",
    "repeat_packets",
    "save_result",
    "serve_files",
    "wait_quiet",
]


# ---- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import av

    ffv = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg_cli": ffv.replace("ffmpeg version ", "").split(" Copyright")[0],
    }


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_quiet(max_load: float = 0.6, timeout_s: float = 900.0, poll_s: float = 5.0, what: str = "") -> float:
    """Poll the 1-minute load average until it is below `max_load` (or `timeout_s` passed).

    Returns the load at the moment measuring starts; the tables print it, so a run on a busy
    machine says so.
    """
    t0 = time.monotonic()
    la = loadavg()
    told = False
    while la >= max_load and time.monotonic() - t0 < timeout_s:
        if not told:
            print(f"  (waiting for load < {max_load}: now {la:.2f}{' before ' + what if what else ''})", flush=True)
            told = True
        time.sleep(poll_s)
        la = loadavg()
    if la >= max_load:
        print(f"  (load still {la:.2f} after {timeout_s:.0f} s: measuring anyway, noted in the table)", flush=True)
    return la


# ---- CPU and memory of process trees --------------------------------------------------------------


@dataclass(slots=True)
class Memory:
    rss: int = 0
    uss: int = 0
    pss: int = 0
    processes: int = 0

    def add(self, other: "Memory") -> "Memory":
        return Memory(self.rss + other.rss, self.uss + other.uss, self.pss + other.pss, self.processes + other.processes)


class TreeMeter:
    """CPU seconds and memory of one or more process trees (roots and all their descendants).

    CPU is counted per process between `start()` and `stop()`: a process alive at both ends
    contributes its difference, one born in between all of its time; one that died in between is
    lost (counted in `vanished`, so a table can say so).
    """

    def __init__(self, roots: Callable[[], Iterable[int]], *, recursive: bool = True) -> None:
        self.roots = roots
        self.recursive = recursive
        self._t0: dict[tuple[int, float], float] = {}
        self.cpu_s = 0.0
        self.vanished = 0
        self.wall_s = 0.0
        self._w0 = 0.0
        self.mem_samples: list[Memory] = []

    def procs(self) -> list[psutil.Process]:
        out: dict[int, psutil.Process] = {}
        for pid in self.roots():
            try:
                p = psutil.Process(pid)
            except psutil.Error:
                continue
            out[p.pid] = p
            if not self.recursive:
                continue
            try:
                for c in p.children(recursive=True):
                    out[c.pid] = c
            except psutil.Error:
                pass
        return list(out.values())

    @staticmethod
    def _cpu(p: psutil.Process) -> float | None:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    def _snapshot(self) -> dict[tuple[int, float], float]:
        snap = {}
        for p in self.procs():
            try:
                key = (p.pid, p.create_time())
            except psutil.Error:
                continue
            c = self._cpu(p)
            if c is not None:
                snap[key] = c
        return snap

    def start(self) -> None:
        self._w0 = time.monotonic()
        self._t0 = self._snapshot()

    def stop(self) -> float:
        end = self._snapshot()
        self.wall_s = time.monotonic() - self._w0
        total = 0.0
        for key, c in end.items():
            total += c - self._t0.get(key, 0.0)
        self.vanished = sum(1 for k in self._t0 if k not in end)
        self.cpu_s = total
        return total

    def sample_memory(self) -> Memory:
        m = Memory()
        for p in self.procs():
            try:
                fi = p.memory_full_info()
            except psutil.Error:
                continue
            m = m.add(Memory(fi.rss, fi.uss, getattr(fi, "pss", 0), 1))
        self.mem_samples.append(m)
        return m

    @property
    def memory(self) -> Memory:
        """The sample with the largest USS (memory is read a few times during the window)."""
        return max(self.mem_samples, key=lambda m: m.uss) if self.mem_samples else Memory()

    def core_pct(self) -> float:
        """Average CPU over the window, in % of one core."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else 0.0


class ThreadMeter:
    """CPU seconds of one process over a window, its threads split by niceness: those that lowered
    their own priority (an export job's, nice 10) apart from the rest.

    Linux keeps niceness per thread and a new thread inherits its creator's, so a job's helper
    threads (the store's read-ahead) count with it. Threads are read from /proc at `start()`, at
    each `sample()` (call it a few times a second) and at `stop()`: a niced thread that ends between
    two samples loses its last moments to `other_s`; the process's total (`total_s`, which keeps
    the time of ended threads) is exact.
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._first: dict[int, float] = {}
        self._last: dict[int, tuple[float, int]] = {}
        self._total0 = 0.0
        self._w0 = 0.0
        self.wall_s = self.total_s = self.niced_s = 0.0
        self.nices: set[int] = set()  # the niceness of each niced thread seen

    def _threads(self) -> dict[int, tuple[float, int]]:
        out = {}
        for stat in Path(f"/proc/{self.pid}/task").glob("*/stat"):
            try:
                raw = stat.read_text()
            except OSError:  # the thread ended
                continue
            f = raw[raw.rfind(")") + 2:].split()  # f[0] is field 3 (state) of proc(5)
            out[int(stat.parent.name)] = ((int(f[11]) + int(f[12])) / self.TICK, int(f[16]))
        return out

    def _total(self) -> float:
        try:
            t = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return self._total0
        return t.user + t.system

    def start(self) -> None:
        self._w0 = time.monotonic()
        self._total0 = self._total()
        now = self._threads()
        self._first = {tid: cpu for tid, (cpu, _n) in now.items()}
        self._last = dict(now)

    def sample(self) -> None:
        self._last.update(self._threads())

    def stop(self) -> None:
        self.sample()
        self.wall_s = time.monotonic() - self._w0
        self.total_s = self._total() - self._total0
        self.niced_s = 0.0
        for tid, (cpu, nice) in self._last.items():
            if nice > 0:
                self.niced_s += cpu - self._first.get(tid, 0.0)  # a thread born in the window: all of it
                self.nices.add(nice)

    @property
    def other_s(self) -> float:
        return self.total_s - self.niced_s


# ---- media ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    frames: int
    seconds: float
    kbps: float
    width: int
    height: int


def clip_720p(seconds: int = CLIP_SECONDS) -> Clip:
    """A 1280×720 25 fps H.264 clip, GOP 50 (closed, no scene cuts, no B-frames), ~2 Mbit/s, cached.

    harness/media's moving scene (panning texture, moving blocks, on-screen clock) plus sensor noise
    (σ = 2 grey levels), libx264 veryfast `tune=grain` CRF 20 under a 2,000 kbit/s VBV (4,000 kbit
    buffer): the encoder sits at the cap like a camera's "CBR" mode, and keyframes are ~90 kB with
    ~5 kB P-frames, as cameras' are. (Without the noise, the clean pan at 2 Mbit/s put 220 kB in
    each keyframe: decoding those costs 3× more and would overstate the health sampler's cost.)
    """
    import av
    import numpy as np

    from harness.media import SceneGenerator, probe

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"clip-720p25-gop50-noisy-{seconds}s.mp4"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return Clip(**{**json.loads(meta.read_text()), "path": path})
    tmp = path.with_suffix(".tmp.mp4")
    print(f"  making {path.name} (once; ~30 s)…", flush=True)
    w, h = 1280, 720
    gen = SceneGenerator(w, h, CLIP_FPS, "moving")
    rng = np.random.default_rng(7)
    noise = [np.clip(rng.normal(0, 2.0, (h, w)).round(), -8, 8).astype(np.int16) for _ in range(16)]
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=CLIP_FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, CLIP_FPS)
        vs.options = {
            "x264-params": f"keyint={CLIP_GOP}:min-keyint={CLIP_GOP}:scenecut=0:bframes=0:open-gop=0"
            ":vbv-maxrate=2000:vbv-bufsize=4000",
            "crf": "20",
            "preset": "veryfast",
            "tune": "grain",
        }
        for i in range(seconds * CLIP_FPS):
            f = gen.frame(i)
            y = f[:h]
            y[:] = np.clip(y.astype(np.int16) + noise[(i * 7) % 16], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(f, format="yuv420p")
            frame.pts = i
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
    p = probe(tmp)
    tmp.rename(path)
    clip = Clip(path, p.frames, p.duration_s, round(path.stat().st_size * 8 / p.duration_s / 1000, 1), p.width, p.height)
    d = asdict(clip)
    d.pop("path")
    meta.write_text(json.dumps(d))
    return clip


def repeat_packets(src: Path, copies: int, out: Path, movflags: str | None = None) -> None:
    """`copies` copies of a file's video packets, timestamps continued, through one MP4 muxer
    (fragmented with `movflags`): minutes or hours of stream from one clip, no frame encoded."""
    import av

    with av.open(str(src)) as inp:
        ist = inp.streams.video[0]
        pkts = [(bytes(p), p.pts, p.dts, p.duration, p.is_keyframe) for p in inp.demux(ist) if p.dts is not None]
        span = max(p[1] + p[3] for p in pkts) - min(p[1] for p in pkts)
        with av.open(str(out), "w", format="mp4", options={"movflags": movflags} if movflags else {}) as oc:
            ost = oc.add_stream_from_template(ist)
            for k in range(copies):
                for data, pts, dts, dur, key in pkts:
                    q = av.Packet(data)
                    q.pts, q.dts, q.duration = pts + k * span, dts + k * span, dur
                    q.time_base = ist.time_base
                    q.is_keyframe = key
                    q.stream = ost
                    oc.mux(q)


def clip_looped(clip: Clip, seconds: float) -> Clip:
    """The clip over and over for at least `seconds`, as one plain MP4 (cached): a `file:` mount
    that streams for many minutes without the camera server re-encoding (a `loop:` mount encodes
    each camera, ~14 % of a core). The picture jumps back at each copy's start; a recorder does
    not care (a GOP-50 clip cut at a keyframe), the health sampler sees motion throughout."""
    copies = max(1, math.ceil(seconds / clip.seconds))
    if copies == 1:
        return clip
    path = CACHE / f"{clip.path.stem}-x{copies}.mp4"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        repeat_packets(clip.path, copies, tmp)
        tmp.rename(path)
    return Clip(path, clip.frames * copies, clip.seconds * copies, clip.kbps, clip.width, clip.height)


def count_frames(path: Path) -> int:
    """Video packets in a file (one frame each for these streams), by demuxing, no decoding."""
    import av

    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            return sum(1 for p in c.demux(vs) if p.size > 0)
    except Exception:
        return 0


# ---- RTSP mounts ----------------------------------------------------------------------------------


class Mounts:
    """N `file:` mounts of one clip spread over camserver processes (`per_server` mounts each)."""

    def __init__(self, clip: Path, n: int, per_server: int = 60) -> None:
        self.servers: list[RtspServer] = []
        self.urls: list[str] = []
        k = 0
        while k < n:
            m = min(per_server, n - k)
            mounts = {f"/c{k + i:03d}": f"file:{clip}" for i in range(m)}
            srv = RtspServer(mounts, ready_timeout=300)
            self.servers.append(srv)
            self.urls += [srv.url(p) for p in mounts]
            k += m

    def pids(self) -> list[int]:
        return [s.pid for s in self.servers if s.pid]

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def __enter__(self) -> "Mounts":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_files(clip: Path, n: int, per_server: int = 60) -> Mounts:
    return Mounts(clip, n, per_server)


# ---- one measured run ---------------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    label: str
    n: int
    window_s: float
    load: float
    cpu_s: float  # the subject's processes (vigil tree, or all reference ffmpegs)
    core_pct: float
    mem: dict[str, int]
    server_core_pct: float  # the RTSP server(s)
    s3_core_pct: float | None = None  # SeaweedFS, when the subject uploads to it
    frames_expected: int = 0
    frames_min: int = 0
    frames_total: int = 0
    cameras_short: int = 0  # cameras whose first run holds fewer frames than the clip
    lag_max_s: float | None = None
    lag_p95_s: float | None = None
    segments: int = 0
    segment_s: float = 10.0
    processes: int = 0
    vanished: int = 0
    connect_spread_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    machine_busy_pct: float = 0.0  # every process on the machine (others' too), % of one core
    main_core_pct: float | None = None  # vigil's main process alone (API, supervisor, uploader)
    workers_core_pct: float | None = None  # the worker processes alone (the recorders)
    upload_gap_ms: float | None = None  # median time between two uploads in a burst: the uploader's pace

    @property
    def per_cam_pct(self) -> float:
        return self.core_pct / self.n if self.n else 0.0

    @property
    def lost(self) -> int:
        return self.frames_expected * self.n - self.frames_total


def _slug(label: str) -> str:
    """A label as a directory name weed accepts (its -dir splits on commas)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


def _sqlite_ro(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    c.execute("PRAGMA busy_timeout=30000")
    return c


def _first_runs(db: Path) -> dict[str, list[tuple[int, int, int, int | None, str]]]:
    """Per camera, its first run's segments: (seq, frames, end_us, stored_us, state)."""
    with _sqlite_ro(db) as c:
        rows = c.execute(
            "SELECT camera_id, run_id, seq, frames, start_us, end_us, stored_us, state FROM segments ORDER BY start_us"
        ).fetchall()
    first: dict[str, str] = {}
    out: dict[str, list[tuple[int, int, int, int | None, str]]] = {}
    for cam, run, seq, frames, _s, end, stored, state in rows:
        first.setdefault(cam, run)
        if first[cam] == run:
            out.setdefault(cam, []).append((seq, frames, end, stored, state))
    return out


def _live_cameras(db: Path, since_us: int) -> int:
    """Cameras whose feed status reports a packet after `since_us`."""
    try:
        with _sqlite_ro(db) as c:
            return int(c.execute("SELECT count(*) FROM feed_status WHERE last_packet_us > ?", (since_us,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def _busy() -> tuple[float, float]:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle, time.monotonic()


def _window(meters: Sequence[TreeMeter], window_s: float, mem_every_s: float = 10.0) -> float:
    """Measure `meters` over `window_s`; returns the machine's busy CPU in % of one core."""
    b0, w0 = _busy()
    for m in meters:
        m.start()
    t_end = time.monotonic() + window_s
    next_mem = time.monotonic() + min(5.0, window_s / 4)
    while (left := t_end - time.monotonic()) > 0:
        if time.monotonic() >= next_mem:
            for m in meters[:1]:  # memory of the subject only (reading smaps costs time)
                m.sample_memory()
            next_mem += mem_every_s
        time.sleep(min(0.5, max(0.0, left)))
    for m in meters:
        m.stop()
    b1, w1 = _busy()
    return 100.0 * (b1 - b0) / (w1 - w0)


def _py_spy(pids: Sequence[int], seconds: float, out_dir: Path, label: str) -> list[subprocess.Popen[bytes]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in pids:
        out = out_dir / f"{label}-pid{pid}.txt"
        procs.append(
            subprocess.Popen(
                [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "199",
                 "--gil", "--threads", "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


def measure_vigil(
    label: str,
    mounts: Mounts,
    clip: Clip,
    *,
    health: bool,
    window_s: float = 40.0,
    segment_s: float = 10.0,
    processes: int = 2,
    workdir: Path | None = None,
    max_load: float = 0.6,
    profile_dir: Path | None = None,
    health_overrides: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
    repo: Path | None = None,
) -> RunResult:
    """`vigil run` recording every mount to SeaweedFS; CPU/memory over a window inside the clip.
    `repo`: run the vigil of another checkout (an older commit's worktree) instead of this one.

    After the window, waits for every camera's first run (the whole clip: the file mount ends at
    the end of the file, and the backoff before a reconnect is set longer than the wait) to be
    stored, and compares its frames with the clip's.
    """
    from harness.vigilproc import VigilProcess

    n = len(mounts.urls)
    work = workdir or Path(tempfile.mkdtemp(prefix=f"vigil-bench-{_slug(label)}-"))
    s3 = SeaweedS3(work / "s3", bucket="vigil-bench")
    cams = [{"id": f"cam{i:03d}", "url": u} for i, u in enumerate(mounts.urls)]
    hcfg: dict[str, Any] = {"enabled": health, **(health_overrides or {})}
    vp = VigilProcess(
        work / "vigil",
        cams,
        s3=s3,
        recording={"segment_seconds": segment_s},
        # a file mount ends after the clip: no reconnect (and second run) before we are done
        workers={"processes": processes, "backoff_initial_s": 120.0, "backoff_max_s": 120.0, **(workers or {})},
        spool={"path": str(work / "vigil" / "spool"), "max_bytes": "20GB"},
        health=hcfg,
        **({"repo": repo} if repo is not None else {}),
    )
    db = work / "vigil" / "catalog.db"
    notes: list[str] = []
    try:
        load = wait_quiet(max_load, what=label)
        t_start_us = int(time.time() * 1e6)
        t0 = time.monotonic()
        vp.start(timeout=120)
        assert vp.proc is not None
        # every camera connected and reporting packets
        deadline = time.monotonic() + 60
        while _live_cameras(db, t_start_us) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        live = _live_cameras(db, t_start_us)
        spread = time.monotonic() - t0
        if live < n:
            notes.append(f"only {live}/{n} cameras live before the window")
        # settle: decoders opened, first segments cut; with health on, also the sampler's start-up
        # (every keyframe decoded until the camera's sharpness baseline is learnt, ~10 s once per
        # connection), so the window measures the steady state a long-connected camera costs
        time.sleep(15.0 if health else 3.0)
        subject = TreeMeter(lambda: [vp.proc.pid] if vp.proc else [])
        server = TreeMeter(mounts.pids)
        s3m = TreeMeter(lambda: [s3.pid] if s3.pid else [])
        mainm = TreeMeter(lambda: [vp.proc.pid] if vp.proc else [], recursive=False)
        # the recorders alone (the worker processes): per-camera work, apart from the fixed cost of
        # the main process, the API process and their pollers, which N divides
        workm = TreeMeter(lambda: vp.worker_pids() if vp.proc else [])
        if time.monotonic() - t0 + window_s > clip.seconds - 2:
            notes.append("window reaches past the clip's end for early cameras")
        busy = _window([subject, server, s3m, mainm, workm], window_s)
        if profile_dir is not None:
            # after the window, never during it: py-spy sampling a process inflates its CPU time
            left = clip.seconds - (time.monotonic() - t0) - 2
            if left >= 3:
                for p in _py_spy([vp.proc.pid, *vp.worker_pids()], min(10.0, left), profile_dir, _slug(label)):
                    p.wait(30)
        # every camera's first run complete and stored
        deadline = t0 + clip.seconds + 40
        while True:
            runs = _first_runs(db)
            done = [c for c, segs in runs.items() if sum(s[1] for s in segs) >= clip.frames and all(s[4] == "stored" for s in segs)]
            if len(done) == n or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        frames = {c: sum(s[1] for s in segs if s[4] == "stored") for c, segs in runs.items()}
        lags = [
            (stored - end) / 1e6
            for segs in runs.values()
            for seq, _f, end, stored, state in segs[:-1]  # the last one closes at the stream's end
            if stored is not None
        ]
        nsegs = sum(len(s) for s in runs.values())
        stored = sorted(st for segs in runs.values() for *_x, st, state in segs if st is not None)
        gaps = [(b - a) / 1e3 for a, b in zip(stored, stored[1:]) if b - a < 1_000_000]
        return RunResult(
            label=label,
            n=n,
            window_s=subject.wall_s,
            load=load,
            cpu_s=subject.cpu_s,
            core_pct=subject.core_pct(),
            mem=asdict(subject.memory),
            server_core_pct=server.core_pct(),
            s3_core_pct=s3m.core_pct(),
            frames_expected=clip.frames,
            frames_min=min(frames.values()) if len(frames) == n else 0,
            frames_total=sum(frames.values()),
            cameras_short=n - sum(1 for f in frames.values() if f >= clip.frames),
            lag_max_s=max(lags) if lags else None,
            lag_p95_s=pct(lags, 95) if lags else None,
            segments=nsegs,
            segment_s=segment_s,
            processes=len(subject.procs()),
            vanished=subject.vanished,
            connect_spread_s=spread,
            notes=notes,
            machine_busy_pct=busy,
            main_core_pct=mainm.core_pct(),
            workers_core_pct=workm.core_pct(),
            upload_gap_ms=median(gaps) if gaps else None,
        )
    finally:
        vp.stop()
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


def measure_ffmpeg(
    label: str,
    urls: Sequence[str],
    mounts: Mounts,
    clip: Clip,
    args: Sequence[str],
    *,
    window_s: float = 40.0,
    outputs: bool = True,
    max_load: float = 0.6,
) -> RunResult:
    """N reference ffmpeg processes, one per URL: `ffmpeg -rtsp_transport tcp -i URL <args>`.

    `args` ending in an output pattern containing `{dir}` write into a per-camera directory; their
    frames are counted after the processes exit (each ends at the end of the file mount).
    """
    work = Path(tempfile.mkdtemp(prefix=f"vigil-bench-{_slug(label)}-"))
    procs: list[subprocess.Popen[bytes]] = []
    notes: list[str] = []
    try:
        load = wait_quiet(max_load, what=label)
        t0 = time.monotonic()
        for i, u in enumerate(urls):
            d = work / f"cam{i:03d}"
            d.mkdir()
            cmd = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", u]
            cmd += [a.replace("{dir}", str(d)) for a in args]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(d / "stderr.txt", "wb")))
        # connected: the first output file exists (or, for null outputs, a few seconds of probing)
        deadline = time.monotonic() + 60
        if outputs:
            while time.monotonic() < deadline:
                if all(any((work / f"cam{i:03d}").glob("*.mp4")) for i in range(len(urls))):
                    break
                time.sleep(0.5)
        else:
            time.sleep(min(10.0, 2.0 + 0.05 * len(urls)))
        spread = time.monotonic() - t0
        time.sleep(3.0)
        pids = [p.pid for p in procs]
        subject = TreeMeter(lambda: pids)
        server = TreeMeter(mounts.pids)
        busy = _window([subject, server], window_s)
        alive = sum(1 for p in procs if p.poll() is None)
        if alive < len(procs):
            notes.append(f"{len(procs) - alive} ffmpeg exited before the end of the window")
        frames: dict[int, int] = {}
        if outputs:
            for p in procs:
                try:
                    p.wait(clip.seconds + 40)
                except subprocess.TimeoutExpired:
                    p.terminate()
            for i in range(len(urls)):
                frames[i] = sum(count_frames(f) for f in sorted((work / f"cam{i:03d}").glob("*.mp4")))
        return RunResult(
            label=label,
            n=len(urls),
            window_s=subject.wall_s,
            load=load,
            cpu_s=subject.cpu_s,
            core_pct=subject.core_pct(),
            mem=asdict(subject.memory),
            server_core_pct=server.core_pct(),
            frames_expected=clip.frames if outputs else 0,
            frames_min=min(frames.values()) if frames else 0,
            frames_total=sum(frames.values()),
            cameras_short=sum(1 for f in frames.values() if f < clip.frames) if outputs else 0,
            processes=len(procs),
            vanished=subject.vanished,
            connect_spread_s=spread,
            notes=notes,
            machine_busy_pct=busy,
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def measure_bare(label: str, mounts: Mounts, clip: Clip, *, window_s: float = 40.0, max_load: float = 0.6) -> RunResult:
    """bench/bare_remux.py (one PyAV thread per camera, demux + fMP4 mux, bytes dropped) over the window."""
    notes: list[str] = []
    load = wait_quiet(max_load, what=label)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_remux.py")), *mounts.urls],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(min(10.0, 3.0 + 0.05 * len(mounts.urls)))
        subject = TreeMeter(lambda: [proc.pid])
        server = TreeMeter(mounts.pids)
        busy = _window([subject, server], window_s)
        try:
            out, err = proc.communicate(timeout=max(5.0, clip.seconds + 30 - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            notes.append("bare remuxer did not finish")
        line = next((x for x in out.splitlines() if x.startswith("PACKETS ")), "PACKETS")
        frames = [int(x) for x in line.split()[1:]]
        if len(frames) != len(mounts.urls):
            notes.append(f"bare remuxer: {err.strip()[-300:]}")
        return RunResult(
            label=label, n=len(mounts.urls), window_s=subject.wall_s, load=load, cpu_s=subject.cpu_s,
            core_pct=subject.core_pct(), mem=asdict(subject.memory), server_core_pct=server.core_pct(),
            frames_expected=clip.frames, frames_min=min(frames) if frames else 0, frames_total=sum(frames),
            cameras_short=sum(1 for f in frames if f < clip.frames), processes=1, vanished=subject.vanished,
            connect_spread_s=0.0, notes=notes, machine_busy_pct=busy,
        )
    finally:
        if proc.poll() is None:
            proc.kill()


FFMPEG_SEGMENT = ["-c", "copy", "-f", "segment", "-segment_time", "10", "{dir}/out%03d.mp4"]
FFMPEG_FREEZEDETECT = ["-vf", "freezedetect", "-f", "null", "-"]


# ---- py-spy profiles ------------------------------------------------------------------------------


def top_frames(paths: Iterable[Path], n: int = 15) -> list[tuple[str, float, float]]:
    """(frame, self %, inclusive %) from py-spy raw (collapsed) output, idle frames removed."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, cnt = line.rpartition(" ")
            if not stack:
                continue
            k = int(cnt)
            frames = stack.split(";")
            total += k
            self_c[frames[-1]] = self_c.get(frames[-1], 0) + k
            for f in set(frames[1:]):  # frames[0] is the thread name with --threads
                incl[f] = incl.get(f, 0) + k
    if not total:
        return []
    rows = sorted(self_c.items(), key=lambda kv: -kv[1])[:n]
    return [(f, 100 * c / total, 100 * incl.get(f, c) / total) for f, c in rows]


# ---- tables ----------------------------------------------------------------------------------------


def pct(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def md_table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def save_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))
    return path


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")
