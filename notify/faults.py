"""Fault tickets, the rule: which faults open a ticket, which share one, and when it closes.

Pure: the notifier (notify/notifier.py) loads the cameras in a fault and the open tickets from the
catalog, feeds this module the state changes read from the event log and the time, and writes back
what it decided, all in one transaction — so the rule is tested with a fake clock and nothing is
lost or done twice across a restart.

- A camera is *in a fault* from a change to any state but `online`/`starting` until it is next
  `online`; moving between faults (frozen → offline) stays one fault, dated from its start.
  `starting` (a worker restart) neither ends nor begins a fault.
- A fault that lasts `open_after_s[state]` opens a ticket (states without a threshold never do).
- Correlated faults are one ticket: cameras sharing a value of a tag in `correlate_tags` (tried in
  order: uplink, switch, site) whose faults began within `window_s` of each other. A camera whose
  fault began within the window of an open ticket's element joins it.
- A ticket closes by itself when every camera in it is `online` again (`recovered`); a technician
  may close it earlier (`resolved`), and a camera whose ticket was resolved opens no new one until
  it has recovered and failed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.states import OFFLINE, ONLINE, STARTING

__all__ = ["Change", "Fault", "FaultRules", "NewTicket", "OpenTicket", "Plan", "TicketRules"]

NOT_FAULTS = (ONLINE, STARTING)


@dataclass(slots=True)
class Fault:
    camera_id: str
    state: str
    since_us: int
    ticket_id: int | None = None


@dataclass(slots=True)
class OpenTicket:
    id: int
    element_tag: str | None
    element_value: str | None
    detected_us: int
    cameras: dict[str, int | None]  # camera → recovered at (None: still in its fault)
    fault: str = OFFLINE  # the first camera's fault


@dataclass(frozen=True, slots=True)
class Change:
    """A state change read from the event log."""

    event_id: int
    camera_id: str
    at_us: int
    from_state: str | None
    to_state: str


@dataclass(slots=True)
class NewTicket:
    fault: str
    element_tag: str | None
    element_value: str | None
    title: str
    detected_us: int
    opened_us: int
    faults: list[Fault]
    id: int | None = None  # given by the catalog when written


@dataclass(slots=True)
class Plan:
    """What one step decided; the notifier writes it in one transaction."""

    opened: list[NewTicket] = field(default_factory=list)
    joined: list[tuple[int, Fault]] = field(default_factory=list)  # (ticket id, fault)
    recovered: list[tuple[int, str, int]] = field(default_factory=list)  # (ticket id, camera, at)
    closed: list[tuple[int, int]] = field(default_factory=list)  # (ticket id, closed at)


@dataclass(frozen=True, slots=True)
class FaultRules:
    open_after_s: dict[str, float]
    correlate_tags: tuple[str, ...] = ("uplink", "switch", "site")
    window_s: float = 5.0


class TicketRules:
    """Applies `FaultRules` to the faults and open tickets it is given (mutating them)."""

    def __init__(self, rules: FaultRules, faults: dict[str, Fault], tickets: dict[int, OpenTicket]) -> None:
        self.rules = rules
        self.faults = faults
        self.tickets = tickets
        self.plan = Plan()

    def observe(self, ch: Change) -> int | None:
        """One state change; returns the ticket covering the camera at that moment (if any)."""
        f = self.faults.get(ch.camera_id)
        if ch.to_state == ONLINE:
            if f is None:
                return None
            del self.faults[ch.camera_id]
            t = self.tickets.get(f.ticket_id) if f.ticket_id is not None else None
            if t is None:
                return f.ticket_id
            if t.cameras.get(ch.camera_id, 0) is None:
                t.cameras[ch.camera_id] = ch.at_us
                self.plan.recovered.append((t.id, ch.camera_id, ch.at_us))
            if all(v is not None for v in t.cameras.values()):
                self.plan.closed.append((t.id, ch.at_us))
                del self.tickets[t.id]
            return t.id
        if ch.to_state in NOT_FAULTS:
            return f.ticket_id if f else None
        if f is None:
            self.faults[ch.camera_id] = Fault(ch.camera_id, ch.to_state, ch.at_us)
            return None
        f.state = ch.to_state
        return f.ticket_id

    def due(self, now_us: int, tags: dict[str, dict[str, str]]) -> Plan:
        """Open (or join) tickets for faults that have lasted past their threshold.

        Indexed by element, so a city-wide outage (every camera failing at once) costs one pass,
        not one scan of every fault per fault."""
        window = int(self.rules.window_s * 1_000_000)
        waiting = sorted(
            (f for f in self.faults.values() if f.ticket_id is None and self._is_due(f, now_us)),
            key=lambda f: (f.since_us, f.camera_id),
        )
        if not waiting:
            return self.plan
        open_by_element: dict[tuple[str, str], list[OpenTicket]] = {}
        for t in self.tickets.values():
            if t.element_tag and t.element_value:
                open_by_element.setdefault((t.element_tag, t.element_value), []).append(t)
        free_by_element: dict[tuple[str, str], list[Fault]] = {}
        for g in sorted(self.faults.values(), key=lambda g: (g.since_us, g.camera_id)):
            if g.ticket_id is None:
                for tag in self.rules.correlate_tags:
                    value = tags.get(g.camera_id, {}).get(tag)
                    if value:
                        free_by_element.setdefault((tag, value), []).append(g)
        for f in waiting:
            if f.ticket_id is not None:  # taken into a group meanwhile
                continue
            mine = tags.get(f.camera_id, {})
            elements = [(tag, mine[tag]) for tag in self.rules.correlate_tags if mine.get(tag)]
            joined = next(
                (
                    t
                    for e in elements
                    for t in open_by_element.get(e, [])
                    if abs(f.since_us - t.detected_us) <= window
                ),
                None,
            )
            if joined is not None:
                f.ticket_id = joined.id
                joined.cameras[f.camera_id] = None
                self.plan.joined.append((joined.id, f))
                continue
            group: list[Fault] = [f]
            element: tuple[str, str] | None = None
            for e in elements:
                peers = [
                    g
                    for g in free_by_element.get(e, [])
                    if g is not f and g.ticket_id is None and abs(g.since_us - f.since_us) <= window
                ]
                if peers:
                    group += peers
                    element = e
                    break
            self._open(group, element, now_us)
        return self.plan

    def _is_due(self, f: Fault, now_us: int) -> bool:
        after = self.rules.open_after_s.get(f.state)
        return after is not None and f.since_us + int(after * 1_000_000) <= now_us

    def _open(self, group: list[Fault], element: tuple[str, str] | None, now_us: int) -> None:
        first = group[0]
        for g in group:
            g.ticket_id = -1  # taken; the notifier puts the ticket's id once it is written
        if element is None:
            title = f"{first.camera_id} {first.state}"
        else:
            states = sorted({g.state for g in group})
            title = f"{element[0]} {element[1]}: {len(group)} cameras {'/'.join(states)}"
        nt = NewTicket(
            fault=first.state,
            element_tag=element[0] if element else None,
            element_value=element[1] if element else None,
            title=title,
            detected_us=min(g.since_us for g in group),
            opened_us=now_us,
            faults=group,
        )
        self.plan.opened.append(nt)
