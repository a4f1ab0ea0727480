"""HealthMonitor fed real packets from clips made with PyAV, on a FakeClock, into a real SQLite catalog.

The clips are decoded for real (keyframes only, as in production); the clock advances by each
packet's duration and the watchdog `tick` runs every half second of clip time, so detection
latencies and event times are checked against the moment each fault was put into the picture.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import pytest

from ingest.health.cadence import BASELINE_GOPS
from ingest.health.rules import BASELINE_MIN_SAMPLES
from ingest.health.monitor import STATUS_REFRESH_S, HealthMonitor, InlineExecutor
from ingest.health.writer import StatusWriter
from storage.catalog import Catalog, Event, FeedStatus
from storage.keys import snapshot_key
from storage.object_store import LocalStore, ObjectStoreError
from reports.availability import availability
from harness.health_clips import ClipSpec, Part, make_health_clip
from harness.fakes import FakeClock
from core.settings import HealthConfig

FPS, GOP = 10, 20  # 2 s GOP at 10 fps: realistic keyframe spacing, few frames to encode
GOP_S = GOP / FPS
SPEC = ClipSpec(320, 240, fps=FPS, gop=GOP)
CFG = HealthConfig()  # the defaults, as shipped
DAY = [
    Part("moving", 20),
    Part("static-noise", 30),  # must stay online
    Part("frozen", 16),  # 50 s: frozen under a ticking clock
    Part("moving", 8),  # 66 s
    Part("black", 10),  # 74 s
    Part("moving", 8),  # 84 s
    Part("blurred", 30),  # 92 s
    Part("moving", 8),  # 122 s … 130 s
]


class Clips(dict[str, Path]):
    """The module's clips, each made on first use (a test run alone makes only the clips it plays)."""

    def __init__(self, d: Path) -> None:
        super().__init__()
        self.d = d
        self.recipes: dict[str, Callable[[], Path]] = {
            "day": lambda: make_health_clip(d / "day.mp4", DAY, SPEC),
            "frozen-noisy-cbr": lambda: make_health_clip(
                d / "fn.mp4",
                [Part("moving", 10), Part("frozen-noisy", 24), Part("moving", 6)],
                ClipSpec(320, 240, fps=FPS, gop=GOP, bitrate_kbps=400),
            ),
            "moving": lambda: make_health_clip(d / "moving.mp4", [Part("moving", 8)], SPEC),
            "freeze": lambda: make_health_clip(d / "freeze.mp4", [Part("moving", 6), Part("frozen", 16)], SPEC),
            "freeze-late": lambda: make_health_clip(d / "freeze-late.mp4", [Part("moving", 35), Part("frozen", 16)], SPEC),
            "black-late": lambda: make_health_clip(d / "black-late.mp4", [Part("moving", 30), Part("black", 10)], SPEC),
            "long": lambda: make_health_clip(d / "long.mp4", [Part("moving", 80), Part("static-noise", 80)], SPEC),
            "long-cbr": lambda: make_health_clip(
                d / "long-cbr.mp4", [Part("moving", 80), Part("static-noise", 80)], replace(SPEC, bitrate_kbps=400)
            ),
        }

    def __missing__(self, key: str) -> Path:
        self[key] = path = self.recipes[key]()
        return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("health-clips"))


class FailingCatalog(Catalog):
    """A catalog that is down for its first `failures` writes."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures

    def put_statuses_with_events(self, items: Sequence[tuple[FeedStatus, Event | None]]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is locked")
        super().put_statuses_with_events(items)


class BrokenStore(LocalStore):
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        raise ObjectStoreError("store down")


class Replay:
    """Plays clips into a HealthMonitor as a session would, with the watchdog ticking every 0.5 s."""

    def __init__(
        self,
        tmp_path: Path,
        cfg: HealthConfig = CFG,
        *,
        catalog: Catalog | None = None,
        store: LocalStore | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.catalog = catalog or Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        self.store = store if store is not None else LocalStore(tmp_path / "objects")
        self.mon = HealthMonitor(
            "cam-1",
            cfg,
            catalog=self.catalog,
            store=self.store,
            clock=self.clock,
            node_id="node-a",
            executor=InlineExecutor(),
        )
        self.wall0 = self.clock.now()
        self.next_tick = self.clock.monotonic() + 0.5

    def t(self) -> float:
        """Seconds since the replay began."""
        return self.clock.now() - self.wall0

    def us(self, t: float) -> int:
        return round((self.wall0 + t) * 1_000_000)

    def advance(self, seconds: float) -> None:
        end = self.clock.monotonic() + seconds
        while self.next_tick <= end + 1e-9:
            self.clock.advance(self.next_tick - self.clock.monotonic())
            self.mon.tick()
            self.next_tick += 0.5
        self.clock.advance(end - self.clock.monotonic())

    def packets(self, path: Path) -> Iterator[tuple[av.Packet, av.video.stream.VideoStream]]:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            for pkt in c.demux(vs):
                if pkt.size:
                    yield pkt, vs

    def play(self, path: Path, run_id: str = "run-1", garbage_every: int = 0) -> None:
        self.mon.on_connecting()
        for i, (pkt, vs) in enumerate(self.packets(path)):
            self.mon.on_packet(pkt, self.clock.monotonic())
            if i == 0:  # the session starts its run after the first packet, as ingest/session.py does
                self.mon.on_connected(run_id, vs)
            if garbage_every and i % garbage_every == garbage_every // 2:
                bad = av.Packet(b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 8)
                bad.stream = vs
                bad.is_keyframe = True
                self.mon.on_packet(bad, self.clock.monotonic())
            self.advance(float(pkt.duration * pkt.time_base) if pkt.duration else 1 / FPS)

    def events(self) -> list[Event]:
        return self.catalog.events_since(0, camera_id="cam-1", limit=1000)

    def path(self) -> list[tuple[str | None, str | None]]:
        return [(e.from_state, e.to_state) for e in self.events()]


def _check(ev: Event, r: Replay, injected_s: float, after_s: float) -> None:
    """Dated at the fault (at most one GOP late), detected within its duration plus one GOP."""
    slack = 1000  # µs: the fake clock adds up 0.1 s steps in floating point
    assert r.us(injected_s) - slack <= ev.at_us <= r.us(injected_s + GOP_S) + slack, (ev, injected_s)
    assert ev.figures["detected_us"] - r.us(injected_s) <= (after_s + GOP_S) * 1e6 + slack, (ev, injected_s)


@pytest.mark.e2e  # a long generated clip replayed through the monitor
def test_a_day_of_faults_each_detected_once_and_recovered(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["day"])
    r.mon.close()
    assert r.path() == [
        ("starting", "online"),
        ("online", "frozen"),
        ("frozen", "online"),
        ("online", "black"),
        ("black", "online"),
        ("online", "tampered"),
        ("tampered", "online"),
    ]
    ev = r.events()
    assert ev[0].at_us == r.us(0) and ev[0].reason == "first picture"
    _check(ev[1], r, 50, CFG.freeze_after_s)  # not at 20 s: the noisy static scene stayed online
    _check(ev[2], r, 66, CFG.recover_after_s)
    _check(ev[3], r, 74, CFG.black_after_s)
    _check(ev[4], r, 84, CFG.recover_after_s)
    _check(ev[5], r, 92, CFG.tamper_after_s)
    _check(ev[6], r, 122, CFG.recover_after_s)
    assert ev[1].figures["diff"] < CFG.freeze_diff and "picture unchanged" in ev[1].reason
    assert ev[3].figures["dark_fraction"] >= CFG.black_fraction
    assert ev[5].figures["sharpness"] < CFG.tamper_ratio * ev[5].figures["sharpness_baseline"]

    st = r.catalog.get_status("cam-1")
    assert st is not None
    assert (st.state, st.since_us, st.run_id, st.node_id, st.reconnects) == (
        "online",
        ev[6].at_us,
        "run-1",
        "node-a",
        0,
    )
    assert st.fps == pytest.approx(FPS, rel=0.05) and st.bitrate_kbps and st.bitrate_kbps > 10
    assert st.last_packet_us is not None and r.us(129.8) <= st.last_packet_us <= r.us(130)
    assert {"diff", "luma", "dark_fraction", "sharpness", "p_ratio", "keyframe_bytes", "decode_ms"} <= set(st.figures)
    assert r.mon.keyframes == 130 / GOP_S and r.mon.samples < r.mon.keyframes  # the cadence skipped some

    jpeg = r.store.get_range(snapshot_key("cam-1"))
    assert jpeg[:2] == b"\xff\xd8" and r.mon.latest_jpeg is not None and r.mon.latest_jpeg[:2] == b"\xff\xd8"

    # The availability report over the replay matches what was put into the picture.
    (row,) = availability(r.catalog, r.us(0), r.us(130))
    assert row.outages == 3
    assert row.mttr_s == pytest.approx((16 + 10 + 30) / 3, abs=GOP_S)
    assert row.uptime_pct == pytest.approx(100 * (130 - 56) / 130, abs=100 * 2 * GOP_S / 130)


def test_frozen_noisy_picture_from_a_bitrate_mode_encoder(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["frozen-noisy-cbr"])
    assert r.path() == [("starting", "online"), ("online", "frozen"), ("frozen", "online")]
    _check(r.events()[1], r, 10, CFG.freeze_after_s)
    _check(r.events()[2], r, 34, CFG.recover_after_s)


def test_stall_offline_reconnect_online(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["moving"])
    last_packet = r.t() - 1 / FPS
    r.advance(1.0)
    r.mon.on_disconnected("stream ended")  # FFmpeg's RTSP demuxer ends quietly ~1 s after the server died
    r.advance(3.9)
    assert r.mon.state == "online"
    r.advance(0.5)
    assert r.mon.state == "offline"
    r.mon.on_connecting()
    r.mon.on_connect_failed("connection refused")  # no second event: already offline
    r.advance(3)
    back = r.t()
    r.play(clips["moving"], run_id="run-2")
    assert r.path() == [("starting", "online"), ("online", "offline"), ("offline", "online")]
    off, on = r.events()[1:]
    assert off.at_us == pytest.approx(r.us(last_packet), abs=1000)
    assert off.reason.startswith("no video packets for 5.") and off.reason.endswith(" s (stream ended)")
    assert off.figures["detected_us"] - off.at_us <= (CFG.stall_timeout_s + 0.5) * 1e6
    assert on.at_us == pytest.approx(r.us(back), abs=1000) and on.reason == "stream back for 2.0 s"
    st = r.catalog.get_status("cam-1")
    assert st is not None and (st.state, st.reconnects, st.run_id) == ("online", 1, "run-2")


def test_hung_stream_goes_offline_even_while_the_session_is_blocked(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["moving"])
    r.advance(CFG.stall_timeout_s + 0.5)  # no packets, no callbacks: only the watchdog ticks
    assert r.mon.state == "offline"
    st = r.catalog.get_status("cam-1")
    assert st is not None and st.state == "offline" and st.fps == 0.0


def test_camera_that_never_connects(tmp_path: Path) -> None:
    r = Replay(tmp_path)
    r.mon.on_connecting()
    r.advance(0.2)
    r.mon.on_connect_failed("connection refused")
    assert r.path() == [("starting", "offline")]
    assert r.events()[0].reason == "cannot connect: connection refused"


def test_garbage_keyframes_never_break_the_session(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["moving"], garbage_every=7)
    r.mon.close()
    assert r.path() == [("starting", "online")]
    st = r.catalog.get_status("cam-1")
    assert st is not None and st.figures["decode_errors"] > 0 and st.state == "online"


def test_catalog_and_store_failures_are_retried_and_events_written_once(tmp_path: Path, clips: dict[str, Path]) -> None:
    cat = FailingCatalog(f"sqlite:///{tmp_path / 'catalog.db'}", failures=3)
    r = Replay(tmp_path, catalog=cat, store=BrokenStore(tmp_path / "objects"))
    r.play(clips["freeze"])
    r.advance(1.0)
    r.mon.close()
    assert cat.failures == 0
    assert r.path() == [("starting", "online"), ("online", "frozen")]
    assert r.mon.latest_jpeg is not None  # the wall's picture is still kept in memory


def test_status_is_written_every_two_seconds_not_per_packet(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    writes: list[int] = []
    real = r.catalog.put_statuses_with_events

    def counting(items: Sequence[tuple[FeedStatus, Event | None]]) -> None:
        writes.extend(st.updated_us for st, _ in items)
        real(items)

    r.catalog.put_statuses_with_events = counting  # type: ignore[method-assign]
    r.play(clips["moving"])  # 80 packets over 8 s, one transition
    assert 4 <= len(writes) <= 6


def test_ticks_from_another_thread_while_packets_flow(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    stop = threading.Event()
    errors: list[BaseException] = []

    def watchdog() -> None:
        while not stop.is_set():
            try:
                r.mon.tick()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            stop.wait(0.0005)

    th = threading.Thread(target=watchdog)
    th.start()
    try:
        r.play(clips["freeze"])
    finally:
        stop.set()
        th.join()
    assert not errors
    assert r.path() == [("starting", "online"), ("online", "frozen")]


def test_health_disabled_keeps_packet_level_states_only(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path, HealthConfig(enabled=False))
    r.play(clips["freeze"])
    assert r.path() == [("starting", "online")]
    assert r.mon.latest_jpeg is None
    st = r.catalog.get_status("cam-1")
    assert st is not None and "luma" not in st.figures and "p_ratio" in st.figures


def test_sample_interval_zero_decodes_every_keyframe(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path, HealthConfig(sample_interval_s=0))
    r.play(clips["freeze"])  # 22 s, keyframes every 2 s
    assert r.mon.samples == r.mon.keyframes == 11
    assert r.path() == [("starting", "online"), ("online", "frozen")]
    _check(r.events()[1], r, 6, CFG.freeze_after_s)


@pytest.mark.e2e  # two 160 s clips made and replayed
@pytest.mark.parametrize("clip", ["long", "long-cbr"])  # quality mode (CRF) and bitrate mode
def test_steady_scene_decodes_one_keyframe_per_sample_interval(tmp_path: Path, clips: dict[str, Path], clip: str) -> None:
    """The cost target: while the packets look like the camera's recent GOPs, decode every 10 s only."""
    r = Replay(tmp_path)
    r.play(clips[clip])  # 80 s moving, then 80 s quiet noisy scene
    assert r.path() == [("starting", "online")]
    first_periodic = min(t for t, why in r.mon.decisions if why == "periodic")
    warm = [t for t, _ in r.mon.decisions if t < first_periodic]  # until online with a sharpness baseline
    assert len(warm) <= BASELINE_MIN_SAMPLES + 1
    steady = [(t, why) for t, why in r.mon.decisions if t > max(warm) + 1e-6]
    # per sample_interval_s at most one decoded keyframe; where the scene changed at 80 s the packets
    # trigger a look (and a look back) until the baselines have taken in the new scene
    before = [why for t, why in steady if t < 80 - 1e-6 and why != "look-back"]
    after = [why for t, why in steady if t >= 80 + BASELINE_GOPS * GOP_S]
    assert set(before) == set(after) == {"periodic"}
    assert len(before) <= (80 - first_periodic) / CFG.sample_interval_s + 1
    assert len(after) <= (80 - BASELINE_GOPS * GOP_S) / CFG.sample_interval_s + 1
    assert r.mon.samples <= 0.35 * r.mon.keyframes


def test_freeze_decodes_every_keyframe_and_is_dated_from_the_previous_one(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["freeze-late"])  # 35 s moving (sparse samples from 10 s: 20, 30 s), then frozen from 35 s
    assert r.path() == [("starting", "online"), ("online", "frozen")]
    ev = r.events()[1]
    _check(ev, r, 35, CFG.freeze_after_s)
    # the trigger came from the packets within two GOPs of the freeze, and looked back one keyframe
    first = min(t for t, why in r.mon.decisions if t >= 30 + 1e-6 and why not in ("periodic", "look-back"))
    assert first <= 35 + 2 * GOP_S + 1e-6
    assert any(why == "look-back" and abs(t - (first - GOP_S)) < 1e-6 for t, why in r.mon.decisions)
    # from then on every keyframe was decoded until the freeze was confirmed
    after = sorted(t for t, _ in r.mon.decisions if t >= first - GOP_S - 1e-6)
    assert all(abs(b - a - GOP_S) < 1e-6 for a, b in zip(after, after[1:], strict=False))
    assert ev.figures["detected_us"] <= r.us(after[-1]) + 1000


def test_black_picture_triggers_a_decode_at_the_next_keyframe(tmp_path: Path, clips: dict[str, Path]) -> None:
    r = Replay(tmp_path)
    r.play(clips["black-late"])  # 30 s moving, then a covered lens
    assert r.path() == [("starting", "online"), ("online", "black")]
    _check(r.events()[1], r, 30, CFG.black_after_s)
    first_black_key = min(t for t, _ in r.mon.decisions if t >= 30 - 1e-6)
    assert first_black_key <= 30 + GOP_S + 1e-6


@pytest.mark.e2e  # an HEVC clip made and replayed
def test_look_back_decodes_a_kept_hevc_keyframe(tmp_path: Path) -> None:
    """The kept keyframe is decoded from its bytes alone: parameter sets from extradata (HEVC in MP4)."""
    clip = make_health_clip(
        tmp_path / "h.mp4",
        [Part("moving", 35), Part("frozen-noisy", 16)],
        ClipSpec(320, 240, fps=FPS, gop=GOP, codec="hevc", crf=28),
    )
    r = Replay(tmp_path)
    r.play(clip)
    assert r.path() == [("starting", "online"), ("online", "frozen")]
    _check(r.events()[1], r, 35, CFG.freeze_after_s)
    assert any(why == "look-back" for _, why in r.mon.decisions)
    assert "decode_errors" not in r.mon.status().figures


def test_b_frames_sample_each_keyframe_itself(tmp_path: Path) -> None:
    clip = make_health_clip(
        tmp_path / "b.mp4", [Part("moving", 6), Part("black", 8)], ClipSpec(320, 240, fps=FPS, gop=GOP, bframes=2)
    )
    r = Replay(tmp_path)
    r.play(clip)
    assert r.path() == [("starting", "online"), ("online", "black")]
    _check(r.events()[1], r, 6, CFG.black_after_s)


def test_one_transaction_per_flush_for_all_cameras_of_a_worker(tmp_path: Path, clips: dict[str, Path]) -> None:
    """A worker's StatusWriter writes every camera's pending statuses (and events, in order) at once."""
    cat = FailingCatalog(f"sqlite:///{tmp_path / 'catalog.db'}", failures=4)  # down for the first 4 flushes
    calls: list[list[str]] = []
    real = cat.put_statuses_with_events

    def counting(items: Sequence[tuple[FeedStatus, Event | None]]) -> None:
        calls.append([st.camera_id for st, _ in items])
        real(items)

    cat.put_statuses_with_events = counting  # type: ignore[method-assign]
    clock = FakeClock()
    writer = StatusWriter(cat, InlineExecutor())
    ids = ["cam-a", "cam-b", "cam-c"]
    mons = [HealthMonitor(c, CFG, catalog=cat, store=None, clock=clock, executor=InlineExecutor(), writer=writer) for c in ids]
    with av.open(str(clips["freeze"])) as c:
        vs = c.streams.video[0]
        next_tick = clock.monotonic() + 0.5
        for i, pkt in enumerate(c.demux(vs)):
            if not pkt.size:
                continue
            for m in mons:
                m.on_packet(pkt, clock.monotonic())
                if i == 0:
                    m.on_connected("run-1", vs)
            clock.advance(1 / FPS)
            if clock.monotonic() >= next_tick:
                with writer.batch():  # the worker's watchdog pass
                    for m in mons:
                        m.tick()
                next_tick += 0.5
    for m in mons:
        m.close()
    assert cat.failures == 0
    ok = calls[4:]
    # the watchdog's refreshes carry all three cameras at once; a transition is flushed at once, alone
    assert sum(sorted(set(cams)) == ids for cams in ok) >= 22 / STATUS_REFRESH_S - 2
    assert len(calls) <= 22 / STATUS_REFRESH_S + 2 * len(ids) + 4 + 1  # not one transaction per camera
    for cid in ids:  # the events written while the catalog was down arrived once, in order
        evs = cat.events_since(0, camera_id=cid)
        assert [(e.from_state, e.to_state) for e in evs] == [("starting", "online"), ("online", "frozen")]
        st = cat.get_status(cid)
        assert st is not None and st.state == "frozen"
