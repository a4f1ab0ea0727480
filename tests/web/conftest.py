"""Fixtures for the web page tests: one real `vigil run` recording real RTSP cameras, keys for the
roles, and headless Chromium (Debian's, driven by Playwright) whose console is watched throughout.

Why one world per module: starting vigil, the cameras and the browser costs ~10 s; the six checks
of the page share them, in file order, as an operator's session would (a fault happens, the wall
shows it; the gap it leaves is then on the timeline).
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
from tests.servers import RtspServer, free_port
from tests.vigilproc import VigilProcess, wait_until

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
    pages: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.vigil.url

    def page(self, role: str) -> Any:
        """A signed-in page for `role` (one browser context each: sessionStorage is per tab)."""
        if role in self.pages:
            return self.pages[role]
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
        self.pages[role] = page
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep vigil's log among the artifacts when a web test fails."""
    outcome: Any = yield
    rep = outcome.get_result()
    world = getattr(item, "funcargs", {}).get("world")
    if rep.failed and isinstance(world, World):
        world.notes["failed"] = True


__all__ = ["ARTIFACTS", "GOP_S", "HEALTH", "SEGMENT_S", "World", "wait_until"]
