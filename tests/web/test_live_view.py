"""The live view in Chromium against a real `vigil run` and the clock camera (camserver `clock:`):
frames over the WebSocket into MSE, glass-to-glass delay read from the picture itself.

1. live play: ~30 s with no stall over 1 s; delay p50/p95 printed and bounded; the page shows the
   delay it measures.
2. a camera killed and restarted while viewed: the view says "stalled" (and why) within the stall
   bound, then resumes by itself once the camera is back.
3. an H.265 camera: the tile says the browser cannot decode it and shows snapshots — not black;
   with an H.264 substream (`health_url`), it plays that instead, and says so.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from storage.api_keys import create_key
from harness.servers import RtspServer
from harness.vigilproc import VigilProcess, wait_until
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, ConsoleLog, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.solo]  # real vigil process, RTSP cameras and a browser; timings against the real clock


CLOCK = "clock:?w=640&h=360&fps=25&gop=25"
READER = (Path(__file__).resolve().parents[2] / "harness" / "clock_reader.js").read_text()
PLAY_S = 60.0  # a minute of live play, no stall over 1 s (the 10-minute run is bench/live_latency.py)
P95_BOUND_MS = 2000  # target 1,000 ms; the bound leaves room for a loaded 2-core CI machine
STALL_S = 2.0


@contextmanager
def live_vigil(work: Path, cams: list[dict[str, Any]], **workers: Any) -> Iterator[dict[str, Any]]:
    """A `vigil run` recording `cams` (one worker process, quick reconnects; `workers` settings on
    top) and a viewer signed in to it in Chromium."""
    v = VigilProcess(
        work / "vigil",
        cams,
        recording={"segment_seconds": 4},
        workers={"processes": 1, "backoff_initial_s": 0.3, "backoff_max_s": 0.5, "connect_timeout_s": 2.0,
                 "read_timeout_s": 2.0, **workers},
        health={"stall_timeout_s": 2.0, "snapshot_interval_s": 1.0},
        log_level="DEBUG",  # a run's start (its first keyframe) is a debug line
    )  # fmt: skip
    with v:
        key = create_key(v.catalog, "viewer", "live-viewer")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            console = ConsoleLog()
            page = signed_in_page(browser, v.url, key, console, "viewer", {"width": 1280, "height": 800})
            try:
                yield {"vigil": v, "page": page, "console": console}
            finally:
                browser.close()


@pytest.fixture(scope="module")
def live_world(tmp_path_factory: pytest.TempPathFactory, clip_hevc_aac: Any) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("live")
    hevc = f"file:{clip_hevc_aac.path}"
    with RtspServer({"/clk": CLOCK}) as rtsp, RtspServer({"/hevc": hevc, "/sub": "clock:?w=320&h=180&fps=25&gop=25"}) as rtsp_h:
        cams = [
            {"id": "clk", "name": "Clock", "url": rtsp.url("/clk")},
            {"id": "hevc", "name": "H.265 camera", "url": rtsp_h.url("/hevc")},
            {"id": "hevc-sub", "name": "H.265 camera with a substream", "url": rtsp_h.url("/hevc"),
             "health_url": rtsp_h.url("/sub")},
        ]  # fmt: skip
        with live_vigil(work, cams) as world:
            yield {**world, "rtsp": rtsp}


def open_live(page: Any, camera_id: str) -> None:
    page.click(f"#wall-grid .tile[data-id='{camera_id}']")
    page.wait_for_selector("#live[open]")


def close_live(page: Any) -> None:
    page.click("#live-close")
    page.wait_for_selector("#live:not([open])", state="attached")


def clock(page: Any) -> dict[str, Any]:
    return page.evaluate("() => window.__clock")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def watch_clock(page: Any, seconds: float, *, warm_frames: int = 25) -> dict[str, Any]:
    """Open the clock camera live, read back `warm_frames` presented frames, then `seconds` of play:
    the clock reader's figures plus `delays` (glass to glass, ms), `p50`, `p95`, `fps`, `shown` (the
    page's own readout, s, once a second), `stats` (the player's counters) and `start_us` (when the
    `seconds` began, wall clock)."""
    page.wait_for_selector("#wall-grid .tile[data-id='clk'][data-state='online']", timeout=60_000)
    open_live(page, "clk")
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').dataset.live") == "live", 15, 0.1,
               "the live stream to play")  # fmt: skip
    page.evaluate(READER)
    wait_until(lambda: len(clock(page)["samples"]) > warm_frames, 10 + warm_frames / 25, 0.2,
               "frames read back from the video")  # fmt: skip
    page.evaluate("() => { const c = window.__clock; c.samples = []; c.gaps = []; c.maxGap = 0; c.frames = 0; c.unread = 0; }")
    t0 = time.monotonic()
    start_us = int(time.time() * 1e6)
    shown: list[float] = []
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)  # the page's readout, sampled once a second
        text = page.text_content("#live-delay") or ""
        if "behind live" in text:
            shown.append(float(text.split()[0]))
    c = clock(page)
    stats = page.evaluate("""() => { const v = document.querySelector('#live-video');
        const q = v.getVideoPlaybackQuality();
        const j = v.livePlayer.jitter;  // (the jitter buffer's figures, where the player has one)
        return {...v.livePlayer.stats, dropped: q.droppedVideoFrames, total: q.totalVideoFrames,
                ...(j ? {late95_s: +j.late95.toFixed(3), target_s: +j.target.toFixed(3)} : {})}; }""")
    delays = [d for _, d in c["samples"]]
    shown_at = [at for at, _ in c["samples"]]
    # a held picture: consecutive frames on screen 150 ms or more apart (~4 frame times at 25 fps)
    held = sorted(b - a for a, b in zip(shown_at, shown_at[1:]) if b - a >= 150)
    c.update(delays=delays, shown=shown, stats=stats, fps=c["frames"] / seconds, start_us=start_us, held=held,
             p50=statistics.median(delays), p95=pct(delays, 95))  # fmt: skip
    print(
        f"\nplayer: {stats}\nlive (WebSocket/MSE, Chromium): {len(delays)} frames read in {seconds:.0f} s "
        f"({c['fps']:.1f} fps), glass-to-glass p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms, max {max(delays):.0f} ms; "
        f"longest gap between frames {c['maxGap']:.0f} ms, {len(held)} of 150 ms or more "
        f"({', '.join(f'{g:.0f}' for g in held[-5:])}); unread {c['unread']}; page shows "
        f"{statistics.median(shown) if shown else float('nan'):.2f} s (median)"
    )
    return c


def test_live_plays_frame_by_frame_with_low_delay(live_world: dict[str, Any]) -> None:
    page = live_world["page"]
    c = watch_clock(page, PLAY_S)
    p95, fps, shown_delays, watch_start_us = c["p95"], c["fps"], c["shown"], c["start_us"]
    assert fps > 15, f"the video advanced at {fps:.1f} fps (25 sent)"
    assert c["unread"] <= c["frames"] * 0.05, "the clock cells are readable in nearly every frame"
    assert not c["gaps"], f"no stall over 1 s: {c['gaps']}"
    assert p95 < P95_BOUND_MS, f"glass-to-glass p95 {p95:.0f} ms"
    assert shown_delays and 0 <= statistics.median(shown_delays) < 2.0, "the page shows the delay it measures"
    assert not live_world["console"].errors, live_world["console"].errors
    # the single view asked for low delay: the worker read each frame as it came, not in bursts
    reads = page.evaluate("() => document.querySelector('#live-video').livePlayer.arrivals.map((a) => a[1])")
    bursts = sum(b - a >= 120 for a, b in zip(reads, reads[1:]))
    assert bursts <= 0.1 * (reads[-1] - reads[0]) / 1000 + 2, f"{bursts} pauses of ≥ 120 ms between reads: bursts, not low delay"
    assert "clk: live read frame by frame" in live_world["vigil"].log_text()
    # recording went on untouched while watched: every frame of the window is in the segments
    cat = live_world["vigil"].catalog
    inside = [g for g in cat.segments_for("clk") if g.start_us >= watch_start_us and g.end_us <= watch_start_us + PLAY_S * 1e6]
    span_s = sum(g.end_us - g.start_us for g in inside) / 1e6
    frames = sum(g.frames for g in inside)
    print(f"recorded while watched: {len(inside)} segments, {span_s:.1f} s, {frames} frames")
    assert span_s >= PLAY_S / 2 and frames >= span_s * 25 * 0.95, "recording is not slowed by viewers"


def test_camera_killed_and_restarted_shows_stalled_then_resumes(live_world: dict[str, Any]) -> None:
    page, rtsp = live_world["page"], live_world["rtsp"]
    if not page.is_visible("#live[open]"):
        open_live(page, "clk")
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').dataset.live") == "live", 15, 0.1,
               "live before the fault")  # fmt: skip
    rtsp.kill()
    t_kill = time.monotonic()
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').dataset.live") == "stalled", STALL_S + 3,
               0.05, "the view to say stalled")  # fmt: skip
    t_stalled = time.monotonic() - t_kill
    msg = page.text_content("#live-msg") or ""
    assert msg.startswith("Stalled"), msg
    assert "camera" in msg, f"the reason names the camera: {msg}"
    rtsp.start()
    t_back = time.monotonic()
    page.evaluate("() => { window.__clock.samples = []; window.__clock.gaps = []; }")
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').dataset.live") == "live", 20, 0.05,
               "live to resume by itself")  # fmt: skip
    t_resumed = time.monotonic() - t_back
    live_at = time.time()
    # the worker logs a run's start at the new connection's first keyframe
    starts = [ln for ln in live_world["vigil"].log_text().splitlines() if "clk: run " in ln and ln.endswith(" starts")]
    first_key = time.mktime(time.strptime(starts[-1][:19], "%Y-%m-%d %H:%M:%S")) + int(starts[-1][20:23]) / 1000
    after_key = live_at - first_key
    wait_until(lambda: len(clock(page)["samples"]) >= 25, 10, 0.1, "frames after the restart")
    delays = [d for _, d in clock(page)["samples"][-25:]]
    print(
        f"\ncamera killed: 'stalled' shown after {t_stalled:.2f} s ({msg!r}); restarted: live again after "
        f"{t_resumed:.2f} s (reconnect backoff included), {after_key:.2f} s after the worker's first keyframe; "
        f"delay after resuming p50 {statistics.median(delays):.0f} ms"
    )
    assert after_key < 2.0, "live again within 1 s of the camera's first keyframe (2 s: a loaded CI machine)"
    assert t_stalled <= STALL_S + 2.0
    assert statistics.median(delays) < P95_BOUND_MS, "back at the live edge, not replaying a backlog"
    close_live(page)


def test_codec_the_browser_cannot_decode_says_so_and_shows_snapshots(live_world: dict[str, Any]) -> None:
    page = live_world["page"]
    page.wait_for_selector("#wall-grid .tile[data-id='hevc'][data-state='online']", timeout=60_000)
    open_live(page, "hevc")
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').dataset.live") == "unsupported", 15,
               0.1, "the view to say it cannot decode")  # fmt: skip
    msg = page.text_content("#live-msg") or ""
    assert "cannot" in msg and "hevc" in msg.lower(), msg
    wait_until(lambda: page.evaluate("() => document.querySelector('#live-video').poster.startsWith('blob:')"), 10, 0.1,
               "a snapshot in place of the video")  # fmt: skip
    close_live(page)


def test_codec_the_browser_cannot_decode_falls_back_to_the_h264_substream(live_world: dict[str, Any]) -> None:
    page = live_world["page"]
    page.wait_for_selector("#wall-grid .tile[data-id='hevc-sub'][data-state='online']", timeout=60_000)
    open_live(page, "hevc-sub")
    state = "() => { const v = document.querySelector('#live-video'); return [v.dataset.live, v.dataset.stream]; }"
    wait_until(lambda: page.evaluate(state) == ["live", "sub"], 15, 0.1, "the substream to play")
    msg = page.text_content("#live-msg") or ""
    assert "substream" in msg and "hevc" in msg.lower(), msg
    page.evaluate(READER)  # (installed once per page)
    n = len(clock(page)["samples"])
    wait_until(lambda: len(clock(page)["samples"]) > n + 25, 10, 0.1, "the substream's frames on screen")
    assert page.evaluate("() => document.querySelector('#live-video').videoWidth") == 320
    close_live(page)


def test_a_live_wall_tile_that_cannot_play_shows_the_snapshot(live_world: dict[str, Any]) -> None:
    """On the live wall too, a codec the browser cannot decode is a tile that says so and shows the
    camera's latest snapshot, never a black tile; the camera with a substream plays it."""
    page = live_world["page"]
    page.wait_for_selector("#wall-grid .tile[data-id='hevc'][data-state='online']", timeout=60_000)
    page.evaluate("() => { location.hash = '#/livewall'; }")
    page.click("#lw-layout-2")
    try:
        tile = "document.querySelector(\"#lw-grid .lw-tile[data-id='hevc']\")"
        wait_until(lambda: page.evaluate(f"() => {tile}?.dataset.live") == "unsupported", 15, 0.1,
                   "the H.265 tile to say it cannot play")  # fmt: skip
        assert "hevc" in page.evaluate(f"() => {tile}.querySelector('.lw-status').textContent").lower()
        wait_until(lambda: page.evaluate(f"() => {tile}.querySelector('video').poster.startsWith('blob:')"), 10, 0.1,
                   "the H.265 tile's snapshot")  # fmt: skip
        sub = "document.querySelector(\"#lw-grid .lw-tile[data-id='hevc-sub']\")"
        wait_until(lambda: page.evaluate(f"() => {sub}?.dataset.live") == "live", 15, 0.1, "the substream's tile to play")
    finally:
        page.evaluate("() => { location.hash = '#/wall'; }")


def test_the_live_hls_playlist_plays_in_the_browser_for_a_viewer(live_world: dict[str, Any]) -> None:
    """The live HLS playlist (for players without Media Source Extensions: Safari on iOS; forced
    here with `?live=hls`, Chromium's own HLS player) keeps playing for a viewer across playlist
    reloads. It stopped after ~2 s with a media error when a viewer's media URLs changed at each
    reload and a range before the window was answered with other bytes than those asked for."""
    page, v = live_world["page"], live_world["vigil"]
    key = create_key(v.catalog, "viewer", "hls-viewer")
    # (Chromium's own HLS player refuses a live playlist of one fragment: wait for a few)
    wait_until(lambda: httpx.get(f"{v.url}/api/cameras/clk/live.m3u8", headers={"Authorization": f"Bearer {key}"}).text.count("#EXTINF") >= 4,
               30, 0.5, "a live window recorded")  # fmt: skip
    page.goto(v.url + "/?live=hls")  # the key stays in the tab's session
    try:
        page.wait_for_selector("#wall-grid .tile[data-id='clk'][data-state='online']", timeout=60_000)
        open_live(page, "clk")
        video = "document.querySelector('#live-video')"
        wait_until(lambda: page.evaluate(f"() => {video}.currentTime") > 0.5, 30, 0.2, "the HLS live view to play")
        t0, c0 = time.monotonic(), page.evaluate(f"() => {video}.currentTime")
        time.sleep(12.0)  # three reloads of a 4 s segment's playlist at least
        state = page.evaluate(f"() => [{video}.currentTime, {video}.error && {video}.error.message, "
                              "document.querySelector('#live-msg')?.textContent || '']")  # fmt: skip
        played = state[0] - c0
        print(f"live HLS in Chromium: {played:.1f} s of video in {time.monotonic() - t0:.1f} s; {state[1:]}")
        assert state[1] is None, state
        assert played >= 6.0, f"only {played:.1f} s played in 12 s: {state}"
        close_live(page)
    finally:
        page.goto(v.url + "/")
        page.wait_for_selector("#app:not([hidden])")
