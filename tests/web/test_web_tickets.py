"""The page's tickets in headless Chromium: on the wall, a marker on the tile of each camera in an
open ticket (unacknowledged and acknowledged look different), and the ticket in the camera's live
view, where a technician acknowledges and resolves it without leaving the wall; the tickets view:
open tickets first, grouped by district, acknowledge with a name, notes, resolve; a viewer sees the
tickets (markers, the live view's ticket) without any button. Real app under uvicorn, tickets
made by the real notifier from events."""

from __future__ import annotations

import pytest
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from notify.notifier import Notifier
from storage.catalog import Event
from storage.tickets import get_ticket, list_tickets
from tests.api.conftest import make_env, serve
from harness.vigilproc import wait_until
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.e2e  # a browser against the API under uvicorn


def test_tickets_on_the_wall_live_view_and_tickets_view(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    for cid in ("a", "b"):
        env.add_camera(cid, name=f"Pole {cid.upper()}", tags={"district": "north", "uplink": "u1"})
    env.add_camera("d", name="Depot", tags={"district": "south"})
    env.add_camera("e", name="East Gate", tags={"district": "east"})
    n = Notifier(env.ctx.settings, env.catalog, "node-1")
    n.step()
    t0 = int((time.time() - 120) * 1e6)  # two minutes ago: past the 60 s offline threshold
    for cid, dt in (("a", 0), ("b", 1), ("d", 0), ("e", 0)):
        env.catalog.add_event(Event(cid, t0 + dt * 1_000_000, "state", "online", "offline", "no packets"))
    n.step()
    tickets = {t.title: t for t in list_tickets(env.catalog)}
    group, single, gate = tickets["uplink u1: 2 cameras offline"], tickets["d offline"], tickets["e offline"]
    errors: list[str] = []
    with serve(env.app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:

            def page_for(role: str):  # type: ignore[no-untyped-def]
                page = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="UTC").new_page()
                page.set_default_timeout(15_000)
                page.on("console", lambda m: errors.append(f"[{role}] {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(f"[{role}] uncaught: {e}"))
                page.goto(base + "/")
                page.fill("#signin-key", env.keys[role])
                page.click("#signin-button")
                page.wait_for_selector("#app:not([hidden])")
                return page

            def mark(page, cid: str):  # type: ignore[no-untyped-def]
                return page.locator(f"#wall-grid .tile[data-id='{cid}'] .tk-mark")

            tech = page_for("technician")
            assert tech.is_visible("#tab-tickets") and not tech.is_visible("#tab-timeline")
            expect(tech.locator("#tk-count")).to_have_text("3 (3 new)")

            # the wall: each camera of an open ticket carries its number, red until acknowledged
            for cid, t in (("a", group), ("b", group), ("d", single), ("e", gate)):
                expect(mark(tech, cid)).to_have_text(f"T#{t.id}")
                expect(mark(tech, cid)).to_have_attribute("data-acked", "false")
            # East Gate's live view: the ticket, acknowledged under the key's name, then resolved
            tech.click("#wall-grid .tile[data-id='e']")
            tech.wait_for_selector("#live[open] #live-ticket:not([hidden])")
            expect(tech.locator("#live-tk-title")).to_have_text(f"Ticket #{gate.id}: e offline")
            expect(tech.locator("#live-tk-times")).to_contain_text("not acknowledged yet")
            expect(tech.locator("#live-tk-name")).to_have_value("test-technician")
            tech.click("#live-tk-ack")
            wait_until(lambda: get_ticket(env.catalog, gate.id).acked_by == "test-technician", 10, 0.1, "the wall's ack")
            expect(tech.locator("#live-tk-ack")).to_be_disabled()
            expect(tech.locator("#live-tk-times")).to_contain_text("acknowledged by test-technician")
            expect(mark(tech, "e")).to_have_attribute("data-acked", "true")  # behind the dialog, at once
            expect(mark(tech, "a")).to_have_attribute("data-acked", "false")
            tech.fill("#live-tk-note", "gate camera re-seated")
            tech.click("#live-tk-resolve")
            wait_until(lambda: get_ticket(env.catalog, gate.id).status == "closed", 10, 0.1, "the wall's resolve")
            done = get_ticket(env.catalog, gate.id)
            assert (done.closed_by, done.close_reason, [x.text for x in done.notes]) == (
                "test-technician", "resolved", ["gate camera re-seated"])  # fmt: skip
            tech.wait_for_selector("#live-ticket", state="hidden")
            expect(mark(tech, "e")).to_be_hidden()
            expect(tech.locator("#tk-count")).to_have_text("2 (2 new)")
            tech.click("#live-close")
            tech.wait_for_selector("#live:not([open])", state="attached")
            tech.click("#tab-tickets")
            tech.wait_for_selector(f"[data-ticket='{group.id}']")
            titles = tech.locator(".tk-group-title").all_inner_texts()
            assert titles == ["Open · south (1)", "Open · north (1)"] or titles == ["Open · north (1)", "Open · south (1)"]
            tech.fill("#tk-name", "Budi")
            tech.dispatch_event("#tk-name", "change")
            card = tech.locator(f"[data-ticket='{group.id}']")
            assert "Pole A" in card.inner_text() and "Pole B" in card.inner_text()
            card.locator(".tk-ack").click()
            wait_until(lambda: get_ticket(env.catalog, group.id).acked_by == "Budi", 10, 0.1, "the acknowledgement")
            tech.wait_for_selector(f"[data-ticket='{group.id}'] .tk-ack[disabled]")
            other = tech.locator(f"[data-ticket='{single.id}']")
            other.locator(".tk-note").fill("generator refuelled")
            other.locator(".tk-resolve").click()
            wait_until(lambda: get_ticket(env.catalog, single.id).status == "closed", 10, 0.1, "the resolve")
            done = get_ticket(env.catalog, single.id)
            assert (done.closed_by, done.close_reason, [x.text for x in done.notes]) == ("Budi", "resolved", ["generator refuelled"])
            tech.wait_for_selector(f"[data-ticket='{single.id}']", state="detached")  # only open ones are shown
            tech.select_option("#tk-status", "closed")
            tech.wait_for_selector(f"[data-ticket='{single.id}'].closed")
            # the response-time table: south's one ticket, resolved (so acknowledged) by Budi just now
            south = tech.locator("#tk-report tbody tr", has_text="south")
            expect(south).to_have_count(1)
            cells = south.locator("td").all_inner_texts()
            assert cells[:3] == ["south", "1", "0"] and cells[3] == cells[5] and cells[3].endswith(("min", "s"))

            viewer = page_for("viewer")
            # the wall's marker and the live view's ticket, read-only
            expect(mark(viewer, "a")).to_have_text(f"T#{group.id}")
            expect(mark(viewer, "a")).to_have_attribute("data-acked", "true")  # Budi acknowledged it
            viewer.click("#wall-grid .tile[data-id='a']")
            viewer.wait_for_selector("#live[open] #live-ticket:not([hidden])")
            expect(viewer.locator("#live-tk-times")).to_contain_text("acknowledged by Budi")
            for sel in ("#live-tk-work", "#live-tk-ack", "#live-tk-resolve", "#live-tk-name"):
                expect(viewer.locator(sel)).to_be_hidden()
            viewer.click("#live-close")
            viewer.click("#tab-tickets")
            viewer.wait_for_selector(f"[data-ticket='{group.id}']")
            assert viewer.locator(".tk-ack").count() == 0 and viewer.locator(".tk-resolve").count() == 0
            assert not viewer.is_visible("#tk-name")
        finally:
            browser.close()
    assert not errors, errors
