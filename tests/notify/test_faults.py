"""The ticket rule (notify/faults.py), pure: thresholds, correlation by tag, recovery, resolve."""

from __future__ import annotations

from notify.faults import Change, Fault, FaultRules, OpenTicket, TicketRules

S = 1_000_000
RULES = FaultRules({"offline": 60, "frozen": 300}, ("uplink", "switch"), 5.0)
TAGS = {
    "a": {"uplink": "u1", "district": "north"},
    "b": {"uplink": "u1", "district": "north"},
    "c": {"uplink": "u1", "district": "south"},
    "d": {"uplink": "u2"},
    "e": {},
}
_ids = iter(range(1, 10_000))


def ch(cam: str, at_s: float, to: str, frm: str = "online") -> Change:
    return Change(next(_ids), cam, int(at_s * S), frm, to)


def test_a_fault_opens_a_ticket_only_past_its_threshold_and_recovery_closes_it() -> None:
    faults: dict[str, Fault] = {}
    tickets: dict[int, OpenTicket] = {}
    r = TicketRules(RULES, faults, tickets)
    r.observe(ch("e", 100, "offline"))
    assert not r.due(int(159.9 * S), TAGS).opened
    plan = r.due(160 * S, TAGS)
    assert [(t.title, t.detected_us, [f.camera_id for f in t.faults]) for t in plan.opened] == [("e offline", 100 * S, ["e"])]
    # a second look does not open it twice
    assert len(TicketRules(RULES, faults, tickets).due(200 * S, TAGS).opened) == 0

    # written with id 7; the camera moves to another fault (same ticket), then comes back
    faults["e"].ticket_id = 7
    tickets[7] = OpenTicket(7, None, None, 100 * S, {"e": None})
    r = TicketRules(RULES, faults, tickets)
    assert r.observe(ch("e", 210, "frozen", "offline")) == 7
    assert faults["e"].since_us == 100 * S
    assert r.observe(ch("e", 250, "online", "frozen")) == 7
    assert r.plan.recovered == [(7, "e", 250 * S)] and r.plan.closed == [(7, 250 * S)]
    assert "e" not in faults and 7 not in tickets


def test_a_short_fault_opens_nothing_and_starting_neither_ends_nor_begins_one() -> None:
    faults: dict[str, Fault] = {}
    r = TicketRules(RULES, faults, {})
    r.observe(ch("e", 0, "frozen"))
    r.observe(ch("e", 299, "online", "frozen"))
    r.observe(ch("d", 0, "starting", "offline"))
    assert not r.due(1000 * S, TAGS).opened and not faults
    r.observe(ch("d", 10, "offline"))
    r.observe(ch("d", 20, "starting", "offline"))
    assert faults["d"].since_us == 10 * S


def test_cameras_on_one_uplink_failing_together_are_one_ticket() -> None:
    faults: dict[str, Fault] = {}
    tickets: dict[int, OpenTicket] = {}
    r = TicketRules(RULES, faults, tickets)
    r.observe(ch("a", 100, "offline"))
    r.observe(ch("b", 101.5, "offline"))
    r.observe(ch("c", 104, "offline"))
    r.observe(ch("d", 100.5, "offline"))  # same moment, other uplink: its own ticket
    plan = r.due(170 * S, TAGS)
    got = sorted((t.title, t.element_tag, t.element_value, [f.camera_id for f in t.faults]) for t in plan.opened)
    assert got == [("d offline", None, None, ["d"]), ("uplink u1: 3 cameras offline", "uplink", "u1", ["a", "b", "c"])]


def test_a_late_camera_within_the_window_joins_the_open_ticket_one_outside_does_not() -> None:
    faults = {"a": Fault("a", "offline", 100 * S, 3), "b": Fault("b", "offline", 101 * S, 3)}
    tickets = {3: OpenTicket(3, "uplink", "u1", 100 * S, {"a": None, "b": None})}
    r = TicketRules(RULES, faults, tickets)
    r.observe(ch("c", 104.5, "offline"))
    plan = r.due(200 * S, TAGS)
    assert [(t, f.camera_id) for t, f in plan.joined] == [(3, "c")] and not plan.opened
    # c recovers: the ticket stays open until a and b do too
    r = TicketRules(RULES, faults, tickets)
    r.observe(ch("c", 210, "online", "offline"))
    r.observe(ch("a", 211, "online", "offline"))
    assert not r.plan.closed
    r.observe(ch("b", 212, "online", "offline"))
    assert r.plan.closed == [(3, 212 * S)]
    # a fault far outside the window of the (now closed) element is a ticket of its own
    faults2 = {"a": Fault("a", "offline", 500 * S), "c": Fault("c", "offline", 520 * S)}
    plan = TicketRules(RULES, faults2, {}).due(600 * S, TAGS)
    assert sorted(t.title for t in plan.opened) == ["a offline", "c offline"]


def test_a_camera_whose_ticket_was_resolved_by_hand_opens_no_new_one_until_it_recovers() -> None:
    faults = {"e": Fault("e", "offline", 0, 9)}  # ticket 9 was resolved: not among the open ones
    r = TicketRules(RULES, faults, {})
    assert not r.due(1000 * S, TAGS).opened
    assert r.observe(ch("e", 1001, "online", "offline")) == 9
    assert not r.plan.closed and "e" not in faults


def test_a_city_wide_outage_is_one_pass() -> None:
    """4,470 cameras on 447 uplinks all failing at once: 447 tickets, decided in one indexed pass."""
    import time

    faults: dict[str, Fault] = {}
    tags = {f"c{i}": {"uplink": f"u{i // 10}"} for i in range(4470)}
    r = TicketRules(RULES, faults, {})
    for i in range(4470):
        r.observe(ch(f"c{i}", 100 + (i % 10) * 0.1, "offline"))
    t0 = time.process_time()
    plan = r.due(200 * S, tags)
    took = time.process_time() - t0
    assert len(plan.opened) == 447 and all(len(t.faults) == 10 for t in plan.opened)
    assert took < 0.25, took  # 0.03 s here; scanning every fault per fault took 0.56 s
