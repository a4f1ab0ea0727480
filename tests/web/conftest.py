"""Fixtures for the web page tests: one real `vigil run` recording real RTSP cameras, keys for the
roles, and headless Chromium (Debian's, driven by Playwright) whose console is watched throughout.

Why one world per module: starting vigil, the cameras and the browser costs ~10 s, so the tests
share them; nothing else. Each test opens its own signed-in pages (closed after it), asks for what
it needs through fixtures (`cam_b_gap`: two recorded runs of cam-b with a gap between), puts back
what it changed, and fails if its pages logged a console error; any test runs alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from storage.api_keys import create_key
from harness.servers import RtspServer, free_port
from harness.vigilproc import VigilProcess, runs_of, wait_until

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
SYNTHETIC = "synthetic:?w=320&h=240&fps=25&gop=25"  # a keyframe every second
GOP_S = 1.0
SEGMENT_S = 2.0
HEALTH = {"freeze_after_s": 4.0, "stall_timeout_s": 3.0, "snapshot_interval_s": 2.0, "recover_after_s": 1.0}


@dataclass
class ConsoleLog:
    """Every console message and uncaught page error, from every page of the run."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def watch(self, page: Any, who: str) -> None:
        def on_console(msg: Any) -> None:
            where = msg.location.get("url", "") if msg.location else ""
            if msg.type == "error":
                self.errors.append(f"[{who}] {msg.text} ({where})")
            elif msg.type == "warning":
                self.warnings.append(f"[{who}] {msg.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"[{who}] uncaught: {exc}"))


@dataclass
class World:
    vigil: VigilProcess
    rtsp: RtspServer  # /a (will freeze) and /c (stays healthy)
    rtsp_b: RtspServer  # cam-b's own server, killed and restarted (a gap)
    keys: dict[str, str]
    browser: Any
    console: ConsoleLog
    pages: list[Any] = field(default_factory=list)  # the current test's pages
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.vigil.url

    def page(self, role: str) -> Any:
        """A new signed-in page for `role`, in a browser context of its own (sessionStorage is per
        tab), closed when the test ends."""
        ctx = self.browser.new_context(
            viewport={"width": 1920, "height": 1080}, timezone_id="UTC", accept_downloads=True
        )
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        self.console.watch(page, role)
        page.goto(self.url + "/")
        page.fill("#signin-key", self.keys[role])
        page.click("#signin-button")
        page.wait_for_selector("#app:not([hidden])")
        page.evaluate("() => { window.__signedInOnce = true; }")  # gone if the page ever reloads
        self.pages.append(page)
        return page

    def close_pages(self) -> None:
        for page in self.pages:
            page.wait_for_timeout(300)  # let late console messages arrive
            page.context.close()
        self.pages.clear()


def signed_in_page(browser: Any, url: str, key: str, console: ConsoleLog, who: str, viewport: dict[str, int]) -> Any:
    """A new page of `browser` signed in to vigil at `url` with `key`, its console watched."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(20_000)
    console.watch(page, who)
    page.goto(url + "/")
    page.fill("#signin-key", key)
    page.click("#signin-button")
    page.wait_for_selector("#app:not([hidden])")
    return page


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("web")
    dead_port = free_port()
    with RtspServer({"/a": SYNTHETIC, "/c": SYNTHETIC}) as rtsp, RtspServer({"/b": SYNTHETIC}) as rtsp_b:
        cams: list[dict[str, Any]] = [
            {"id": "cam-a", "name": "Alun-alun North", "url": rtsp.url("/a"), "tags": {"district": "north"}},
            {"id": "cam-b", "name": "Bridge East", "url": rtsp_b.url("/b"), "tags": {"district": "east"}},
            {"id": "cam-c", "name": "Central Station", "url": rtsp.url("/c"), "tags": {"district": "central"}},
            {"id": "cam-dead", "name": "Depot Gate", "url": f"rtsp://127.0.0.1:{dead_port}/none",
             "tags": {"district": "east"}},
            {"id": "cam-off", "name": "Old Market (off)", "url": rtsp.url("/c"), "enabled": False,
             "tags": {"district": "central"}},
        ]  # fmt: skip
        v = VigilProcess(
            work / "vigil",
            cams,
            recording={"segment_seconds": SEGMENT_S},
            workers={"processes": 1, "backoff_initial_s": 0.5, "backoff_max_s": 1.0, "connect_timeout_s": 2.0,
                     "read_timeout_s": 3.0},
            health=HEALTH,
        )  # fmt: skip
        with v:
            keys = {role: create_key(v.catalog, role, f"web-{role}") for role in ("viewer", "investigator")}
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                w = World(v, rtsp, rtsp_b, keys, browser, ConsoleLog())
                try:
                    yield w
                finally:
                    browser.close()
                    if w.notes.get("failed"):
                        shutil.copy(v.log_path, ARTIFACTS / "web-vigil.log")


@pytest.fixture(autouse=True)
def _quiet_console(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of the world's: no console error or uncaught exception on its pages; closed after."""
    if "world" not in request.fixturenames:
        yield
        return
    world: World = request.getfixturevalue("world")
    before = len(world.console.errors)
    yield
    world.close_pages()
    if world.console.warnings:
        print("\nconsole warnings:\n" + "\n".join(world.console.warnings))
        world.console.warnings.clear()
    new = world.console.errors[before:]
    assert new == [], "\n".join(new)


@dataclass(frozen=True)
class Gap:
    """Two consecutive recorded runs of cam-b (epoch ms): the first long enough for a 4 s clip."""

    run1: tuple[float, float]
    run2_start_ms: float

    @property
    def gap(self) -> tuple[float, float]:
        return (self.run1[1], self.run2_start_ms)


def _cam_b_gap(world: World) -> Gap | None:
    segs = world.vigil.catalog.segments_between("cam-b", 0, 2**62, stored_only=True)
    runs = list(runs_of(segs).values())
    for first, second in reversed(list(zip(runs, runs[1:]))):
        # the incident test ends its window 2 s into the gap: a shorter one (a reconnect under
        # load splits a run too) would put the next run inside it
        if first[-1].end_us - first[0].start_us >= 7_000_000 and second[0].start_us - first[-1].end_us >= 3_000_000:
            return Gap((first[0].start_us / 1000, first[-1].end_us / 1000), second[0].start_us / 1000)
    return None


@pytest.fixture(scope="module")
def cam_b_gap(world: World) -> Gap:
    """A gap of ≥ 3 s in cam-b's recording after ≥ 7 s of it: found (a test that killed cam-b's server may
    have left one), else made here by killing its server for a few seconds."""
    found = _cam_b_gap(world)
    if found is not None:
        return found

    def current_run_s() -> float:
        runs = list(runs_of(world.vigil.catalog.segments_between("cam-b", 0, 2**62, stored_only=True)).values())
        return (runs[-1][-1].end_us - runs[-1][0].start_us) / 1e6 if runs else 0.0

    wait_until(lambda: current_run_s() >= 7.0, 30, 0.25, "7 s of cam-b stored in one run")
    world.rtsp_b.kill()
    try:
        wait_until(lambda: world.vigil.catalog.get_status("cam-b").state == "offline", 20, 0.25, "cam-b offline")
    finally:
        world.rtsp_b.start()
    return wait_until(lambda: _cam_b_gap(world), 30, 0.25, "cam-b's second run (after its server came back) stored")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep vigil's log among the artifacts when a web test fails."""
    outcome: Any = yield
    rep = outcome.get_result()
    world = getattr(item, "funcargs", {}).get("world")
    if rep.failed and isinstance(world, World):
        world.notes["failed"] = True


__all__ = ["ARTIFACTS", "GOP_S", "HEALTH", "SEGMENT_S", "Gap", "World", "signed_in_page", "wait_until"]
