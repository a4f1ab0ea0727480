"""Stale statuses become `unknown` events, once, and end when the worker reports again — on SQLite
and PostgreSQL, with a fake clock; through the notifier they reach a webhook like any change."""

from __future__ import annotations

from core.settings import Settings
from core.states import STALE_AFTER_S
from harness.fakes import FakeClock
from notify.notifier import Notifier
from notify.silence import BACK_REASON, SilenceWatch
from storage.catalog import Camera, Catalog, Event, FeedStatus
from storage.outbox import pending

T0 = 1_800_000_000.0


def us(t: float) -> int:
    return int(t * 1_000_000)


def report(cat: Catalog, cid: str, state: str, t: float, since: float) -> None:
    cat.put_status(FeedStatus(camera_id=cid, state=state, since_us=us(since), updated_us=us(t)))


def states(cat: Catalog, cid: str) -> list[tuple[str | None, str | None, int]]:
    return [(e.from_state, e.to_state, e.at_us) for e in cat.events_since(0, camera_id=cid) if e.kind == "state"]


def world(url: str) -> tuple[Catalog, FakeClock]:
    cat = Catalog(url)
    for cid, enabled in (("a", True), ("b", True), ("off", False)):
        cat.upsert_camera(Camera(id=cid, url="rtsp://10.0.0.1/x", name=cid.upper(), enabled=enabled), 1)
        cat.add_event(Event(cid, us(T0 - 100), "state", "starting", "online", "first picture"))
    return cat, FakeClock(T0)


def test_a_silent_worker_is_unknown_once_then_back(catalog_url: str) -> None:
    cat, clock = world(catalog_url)
    watch = SilenceWatch(cat, clock=clock, grace_s=3)
    for cid in ("a", "b", "off"):
        report(cat, cid, "online", T0, T0 - 100)
    clock.advance(STALE_AFTER_S + 1)  # all three stale, but this node has only begun to lead
    assert watch.check() == []
    clock.advance(4)
    report(cat, "b", "online", clock.now(), T0 - 100)  # b's worker still reports
    made = watch.check()
    assert [(e.camera_id, e.from_state, e.to_state, e.at_us) for e in made] == [("a", "online", "unknown", us(T0))]
    assert made[0].reason == "no report from its worker since 2027-01-15T08:00:00Z"
    assert watch.check() == []  # once
    # a second leader (another node, or after a restart) does not write it again
    assert SilenceWatch(cat, clock=clock, grace_s=0).check() == []
    clock.advance(30)
    report(cat, "b", "online", clock.now(), T0 - 100)
    assert watch.check() == []  # a still silent: nothing new
    report(cat, "a", "online", clock.now(), T0 - 100)
    back = watch.check()
    assert [(e.from_state, e.to_state, e.at_us, e.reason) for e in back] == [("unknown", "online", us(clock.now()), BACK_REASON)]
    assert states(cat, "a")[-2:] == [("online", "unknown", us(T0)), ("unknown", "online", us(clock.now()))]
    assert states(cat, "off") == [("starting", "online", us(T0 - 100))]  # disabled: never unknown


def test_a_worker_that_speaks_for_itself_needs_no_return_event(catalog_url: str) -> None:
    """Back with a change of its own dated after the silence (it restarted: `starting`)."""
    cat, clock = world(catalog_url)
    watch = SilenceWatch(cat, clock=clock, grace_s=0)
    report(cat, "a", "online", T0, T0 - 100)
    report(cat, "b", "online", T0, T0 - 100)
    clock.advance(STALE_AFTER_S + 1)
    assert {e.camera_id for e in watch.check()} == {"a", "b"}
    clock.advance(5)
    cat.add_event(Event("a", us(clock.now()), "state", "online", "starting", "worker restarted"))
    report(cat, "a", "starting", clock.now(), clock.now())
    assert [e.camera_id for e in watch.check()] == []
    assert states(cat, "a")[-1] == ("online", "starting", us(clock.now()))


def test_a_return_missed_while_no_node_led_is_written_by_the_next_leader(catalog_url: str) -> None:
    cat, clock = world(catalog_url)
    report(cat, "a", "offline", T0, T0 - 50)
    report(cat, "b", "online", T0, T0 - 100)
    clock.advance(STALE_AFTER_S + 1)
    assert len(SilenceWatch(cat, clock=clock, grace_s=0).check()) == 2  # the leader dies after this
    clock.advance(20)
    report(cat, "a", "offline", clock.now(), T0 - 50)  # a's worker is back; nobody leads
    nxt = SilenceWatch(cat, clock=clock, grace_s=15)
    got = nxt.check()  # looking only (grace), yet a return is no alarm: written at once
    assert [(e.camera_id, e.from_state, e.to_state) for e in got] == [("a", "unknown", "offline")]


def test_the_notifier_sends_unknown_to_a_webhook_that_wants_it(catalog_url: str) -> None:
    cat, clock = world(catalog_url)
    hooks = [{"url": "http://127.0.0.1:9/u", "secret": "s", "name": "u", "states": ["unknown"]}]
    n = Notifier(Settings(catalog=catalog_url, notifications={"webhooks": hooks}), cat, "node-1", clock=clock)
    n.silence.grace_us = 0
    report(cat, "a", "online", T0, T0 - 100)
    report(cat, "b", "online", T0, T0 - 100)
    n.step()
    clock.advance(STALE_AFTER_S + 1)
    n._watch_silence()
    assert n.step() == 2
    rows = pending(cat, "u", 10)
    assert sorted((r.order_key, '"to_state":"unknown"' in r.body) for r in rows) == [("a", True), ("b", True)]
