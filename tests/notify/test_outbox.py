"""The outbox on SQLite and PostgreSQL: one notifier per cluster (the cursor's lease), changes
written once per webhook with the cursor, filters, and deliveries to a real HTTP receiver — a
refused row waits while other cameras go on, and a camera's later change never overtakes it."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import httpx

from core.settings import Settings
from notify.notifier import Notifier
from storage.catalog import Camera, Catalog, Event
from storage.outbox import pending, webhook_figures
from storage.tickets import ack_ticket, list_tickets, resolve_ticket
from storage.webhook_rows import rfc3339
from harness.fakes import FakeClock
from tests.webhook_receiver import Receiver

T0 = 1_800_000_000.0


def settings(url: str, hooks: list[dict]) -> Settings:  # type: ignore[type-arg]
    return Settings(
        catalog=url,
        notifications={"webhooks": hooks, "retry_initial_s": 0.2, "retry_max_s": 0.5},
        tickets={"open_after_s": {"offline": 60}},
    )


def test_one_notifier_holds_the_log_and_writes_each_change_once_per_webhook(catalog_url: str) -> None:
    cat = Catalog(catalog_url)
    for cid, district in (("a", "north"), ("b", "south")):
        cat.upsert_camera(Camera(id=cid, url="rtsp://10.0.0.1/x", name=cid.upper(), tags={"district": district}), 1)
    cat.add_event(Event("a", 1, "state", "starting", "offline"))  # history: before the notifier ever ran
    hooks = [
        {"url": "http://127.0.0.1:9/all", "secret": "x", "name": "all"},
        {"url": "http://127.0.0.1:9/north", "secret": "y", "name": "north", "tags": {"district": ["north", "east"]}},
        {"url": "http://127.0.0.1:9/frozen", "secret": "z", "name": "frozen", "states": ["frozen"]},
    ]
    clock = FakeClock(T0)
    one = Notifier(settings(catalog_url, hooks), cat, "node-1", clock=clock)
    two = Notifier(settings(catalog_url, hooks), cat, "node-2", clock=clock)
    one.step()
    assert two.step() == 0 and one.holder and not two.holder
    us = int(T0 * 1e6)
    cat.add_event(Event("a", us, "state", "online", "offline", "no packets"))
    cat.add_event(Event("b", us, "state", "online", "offline", "no packets"))
    cat.add_event(Event("b", us + 1, "spool_drop", reason="not a state change"))
    cat.add_event(Event("b", us + 2, "state", "offline", "online", "stream back"))  # a recovery: news too
    cat.add_event(Event("a", us + 3, "state", "offline", "starting"))
    assert two.step() == 0  # not the holder: reads and writes nothing
    assert one.step() == 5
    assert one.step() == 0
    ids = {name: [d.delivery_id for d in pending(cat, name)] for name in ("all", "north", "frozen")}
    e = [ev.id for ev in cat.events_since(0) if ev.kind == "state"][1:]
    assert ids == {"all": [f"event-{e[0]}", f"event-{e[1]}", f"event-{e[2]}", f"event-{e[3]}"],
                   "north": [f"event-{e[0]}", f"event-{e[3]}"], "frozen": []}  # fmt: skip
    # node-1 stops: node-2 takes over from the same cursor, nothing is written twice
    one.stop()
    cat.add_event(Event("b", us + 10, "state", "online", "frozen", "picture still"))
    assert two.step() == 1
    assert len(pending(cat, "all")) == 5 and len(pending(cat, "frozen")) == 1


def test_deliveries_in_order_per_camera_a_refused_row_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    cat = Catalog(url)
    for cid in ("a", "b"):
        cat.upsert_camera(Camera(id=cid, url="rtsp://10.0.0.1/x"), 1)
    receiver = Receiver()
    refuse: set[str] = set()

    def status_for(raw: bytes) -> int:
        return 400 if any(r.encode() in raw for r in refuse) else 200

    try:
        clock = FakeClock(T0)
        n = Notifier(settings(url, [{"url": receiver.url, "secret": "k", "name": "r"}]), cat, "node-1", clock=clock)
        n.step()
        now = int(T0 * 1e6)  # faults younger than the 60 s threshold: no ticket in the way
        first = cat.add_event(Event("a", now, "state", "online", "offline", "one"))
        cat.add_event(Event("a", now + 1, "state", "offline", "online", "two"))
        cat.add_event(Event("b", now + 2, "state", "online", "offline", "three"))
        refuse.add(f'"id":"event-{first}"')
        receiver.status_for = status_for  # type: ignore[attr-defined]
        n.step()
        with httpx.Client() as client:
            assert n._deliver_pass(n.hooks[0], client, _backoff()) > 0
            got = [b["id"] for b in receiver.bodies()]
            # a's first change was refused: a's second waits behind it; b's goes on
            assert got == [f"event-{first}", f"event-{first + 2}"]
            figures = webhook_figures(cat, ["r"])[0]
            assert (figures.pending, figures.delivered, figures.failures) == (2, 1, 1)
            assert figures.last_error == f"HTTP 400 from {receiver.url}"
            refuse.clear()
            n._deliver_pass(n.hooks[0], client, _backoff())
            assert len(receiver.bodies()) == 2  # the refused row waits for its own backoff (0.1-0.2 s)
            clock.advance(0.25)
            n._deliver_pass(n.hooks[0], client, _backoff())
        ids = [b["id"] for b in receiver.bodies()]
        assert ids == [f"event-{first}", f"event-{first + 2}", f"event-{first}", f"event-{first + 1}"]
        assert webhook_figures(cat, ["r"])[0].pending == 0
    finally:
        receiver.down()


def _backoff():  # type: ignore[no-untyped-def]
    from core.backoff import Backoff

    return Backoff(0.2, 0.5)


def test_a_hand_ack_and_resolve_reach_the_webhooks_that_want_the_ticket_signed(catalog_url: str) -> None:
    """`ticket_acked` (the first acknowledgement only) and `ticket_resolved`, written by the API's
    functions into the outbox with the change, go to the webhooks whose states hold the ticket's
    fault and whose tags match one of its cameras; the notifier delivers them, signed, to a real
    HTTP receiver after the ticket's own `ticket_opened`."""
    cat = Catalog(catalog_url)
    cat.upsert_camera(Camera(id="a", url="rtsp://10.0.0.1/x", name="Pole A", tags={"district": "north"}), 1)
    receiver = Receiver()
    hooks = [
        {"url": receiver.url, "secret": "k-all", "name": "all"},
        {"url": "http://127.0.0.1:9/south", "secret": "y", "name": "south", "tags": {"district": "south"}},
        {"url": "http://127.0.0.1:9/frozen", "secret": "z", "name": "frozen", "states": ["frozen"]},
    ]
    s = settings(catalog_url, hooks)
    wanted = s.notifications.webhooks
    try:
        clock = FakeClock(T0)
        n = Notifier(s, cat, "node-1", clock=clock)
        n.step()
        us = int(T0 * 1e6)
        cat.add_event(Event("a", us, "state", "online", "offline", "no packets"))
        clock.advance(61)
        n.step()
        (t,) = list_tickets(cat, status="open")
        assert ack_ticket(cat, t.id, "Budi", us + 70_000_000, wanted).acked_by == "Budi"
        ack_ticket(cat, t.id, "Sari", us + 71_000_000, wanted)  # keeps Budi's: sends nothing
        resolve_ticket(cat, t.id, "Rina", us + 80_000_000, "power cycled", wanted)
        assert pending(cat, "south") == [] and pending(cat, "frozen") == []
        with httpx.Client() as client:
            n._deliver_pass(n.hooks[0], client, _backoff())
        got = receiver.deliveries()
        assert [d.json["id"] for d in got] == [
            f"event-{cat.last_event_id()}", f"ticket-{t.id}-opened", f"ticket-{t.id}-acked", f"ticket-{t.id}-resolved"]  # fmt: skip
        for d in got:
            mac = hmac.new(b"k-all", d.raw, hashlib.sha256).hexdigest()
            assert d.headers["x-vigil-signature"] == f"sha256={mac}" and d.headers["x-vigil-delivery"] == d.json["id"]
        acked, resolved = got[2].json, got[3].json
        assert (acked["type"], acked["acked_by"], acked["at"], acked["ticket_id"]) == (
            "ticket_acked", "Budi", rfc3339(us + 70_000_000), t.id)  # fmt: skip
        assert (acked["camera_id"], acked["camera_name"], acked["tags"], acked["cameras"]) == ("a", "Pole A", {"district": "north"}, ["a"])
        assert (acked["from_state"], acked["to_state"], acked["reason"]) == ("offline", "offline", "a offline")
        assert (resolved["type"], resolved["resolved_by"], resolved["note"], resolved["acked_by"]) == (
            "ticket_resolved", "Rina", "power cycled", "Budi")  # fmt: skip
        assert resolved["at"] == rfc3339(us + 80_000_000)
    finally:
        receiver.down()
