"""The notifier: state changes from the catalog's event log → fault tickets and the webhook outbox
→ deliveries. Runs in `vigil run` (vigil/service.py) beside the recorders, never in the API.

Two kinds of threads:
- the *log reader* (one): every `poll_s` it reads the events after its cursor and, in ONE
  transaction, applies the ticket rules (notify/faults.py), writes the outbox rows for every webhook
  that wants each change, and moves the cursor. A crash between two steps repeats nothing and loses
  nothing. It does this only while it holds the cursor's lease (one node of a cluster at a time).
- a *deliverer* per webhook: sends its outbox rows oldest first, at least once, in order per camera
  (a camera's later change waits while an earlier one is not delivered); a receiver that is down or
  answers 5xx/429 is retried with backoff (core/backoff.py) from the oldest row; a row the receiver
  refuses (another 4xx) waits with its own backoff while other cameras go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import sqlalchemy as sa

from core.backoff import Backoff
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings
from core.states import ONLINE, STATUS_REFRESH_S
from notify.faults import Change, Fault, FaultRules, NewTicket, OpenTicket, TicketRules
from notify.silence import SilenceWatch
from notify.webhooks import Hook
from storage.catalog import Camera, Catalog
from storage.catalog.tables import camera_faults, events, ticket_cameras, tickets
from storage.outbox import (
    OutboxRow,
    claim_cursor,
    enqueue,
    mark_delivered,
    mark_failed,
    move_cursor,
    pending,
    prune_delivered,
    release_cursor,
)
from storage.webhook_rows import body, rfc3339, ticket_rows

__all__ = ["Notifier"]

log = logging.getLogger("vigil.notify")

PAGE = 500
LEASE_TTL_S = 15.0
CAMERAS_TTL_S = 10.0
PRUNE_EVERY_S = 600.0
_FAULT_UPDATE = camera_faults.update().where(camera_faults.c.camera_id == sa.bindparam("_cid"))
_RECOVERED = ticket_cameras.update().where(
    ticket_cameras.c.ticket_id == sa.bindparam("_tid"), ticket_cameras.c.camera_id == sa.bindparam("_cid")
)
_CLOSED = (
    tickets.update()
    .where(tickets.c.id == sa.bindparam("_tid"), tickets.c.status == "open")
    .values(status="closed", close_reason="recovered")
)
MARK_EVERY = 20  # deliveries marked per transaction: a crash re-sends at most this many


class Notifier:
    def __init__(self, settings: Settings, catalog: Catalog, node_id: str, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.cfg = settings.notifications
        self.catalog = catalog
        self.node_id = node_id or "node"
        self.clock = clock
        self.hooks = [Hook(w) for w in self.cfg.webhooks]
        t = settings.tickets
        self.tickets_on = t.enabled
        self.rules = FaultRules(dict(t.open_after_s), tuple(t.correlate_tags), t.correlate_window_s)
        self._stop = threading.Event()
        self._wake = {h.name: threading.Event() for h in self.hooks}
        self._threads: list[threading.Thread] = []
        self._cams: dict[str, Camera] = {}
        self._cams_at = -1e9
        self._cams_version: tuple[int, int] | None = None
        self.holder = False
        self._cursor = -1
        self._renew_at = 0.0
        self._next_due_us: int | None = 0  # 0: unknown, look at the faults
        self._pruned_at = 0.0
        self.steps = 0
        self.silence = SilenceWatch(catalog, clock=clock)
        self._silence_at = 0.0

    # ---- lifecycle

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._log_loop, name="notify-log", daemon=True)]
        self._threads += [
            threading.Thread(target=self._deliver_loop, args=(h,), name=f"notify-{h.name}", daemon=True) for h in self.hooks
        ]
        for th in self._threads:
            th.start()
        if self.hooks:
            log.info("notifier: %d webhook(s): %s", len(self.hooks), ", ".join(f"{h.name} → {h.safe_url}" for h in self.hooks))

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        for ev in self._wake.values():
            ev.set()
        deadline = time.monotonic() + timeout_s
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        if self.holder:
            try:
                release_cursor(self.catalog, self.node_id)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                pass

    # ---- the log reader

    def _now_us(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def _log_loop(self) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                while self.step() >= PAGE:  # a backlog: read on without waiting
                    pass
                errors = 0
                self._watch_silence()
            except Exception as e:  # noqa: BLE001 - the catalog may be down: retry next poll
                errors += 1
                if errors <= 3 or errors % 100 == 0:
                    log.warning("notifier: cannot read the event log (%s); will retry", e)
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                try:
                    prune_delivered(self.catalog, self._now_us() - int(self.cfg.keep_delivered_days * 86_400e6))
                except Exception:  # noqa: BLE001
                    pass
            self._stop.wait(self.cfg.poll_s)

    def _watch_silence(self) -> None:
        """Stale statuses → `unknown` events (notify/silence.py), by the leader only."""
        if not self.holder:
            self.silence.stop_leading()
            return
        if time.monotonic() - self._silence_at >= STATUS_REFRESH_S:
            self._silence_at = time.monotonic()
            self.silence.check()

    def _nothing_to_do(self) -> bool:
        """A read-only look first: most polls find no new event and no fault due (no write then)."""
        if not self.holder or time.monotonic() >= self._renew_at:
            return False
        if self._next_due_us is not None and self._now_us() >= self._next_due_us:
            return False
        with self.catalog.engine.connect() as c:
            last = c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one()
        return int(last) <= self._cursor

    def _cameras(self, ids: Sequence[str]) -> dict[str, Camera]:
        """The catalog's cameras, read again when they changed (one count-and-max query): a camera
        removed a moment ago must not keep a fault its worker's last writes would reopen."""
        version = self.catalog.cameras_version()
        if version != self._cams_version or time.monotonic() - self._cams_at > CAMERAS_TTL_S or any(i not in self._cams for i in ids):
            self._cams = {c.id: c for c in self.catalog.list_cameras()}
            self._cams_at, self._cams_version = time.monotonic(), version
        return self._cams

    def step(self) -> int:
        """One transaction: lease, events after the cursor, tickets, outbox rows, cursor. Returns
        the number of events read (PAGE: there may be more)."""
        if self._nothing_to_do():
            return 0
        now = self._now_us()
        with self.catalog.engine.begin() as c:
            cursor = claim_cursor(c, self.node_id, now, int(LEASE_TTL_S * 1_000_000))
            was = self.holder
            self.holder = cursor is not None
            self._renew_at = time.monotonic() + LEASE_TTL_S / 3
            if cursor is None:
                return 0
            if not was:
                log.info("notifier: %s reads the event log from event %d", self.node_id, cursor)
                self._wake_all()
            evs = list(c.execute(sa.select(events).where(events.c.id > cursor).order_by(events.c.id).limit(PAGE)))
            faults = {r.camera_id: Fault(r.camera_id, r.state, int(r.since_us), r.ticket_id) for r in c.execute(sa.select(camera_faults))}
            before = {k: (f.state, f.since_us, f.ticket_id) for k, f in faults.items()}
            open_tickets = self._open_tickets(c)
            known = dict(open_tickets)
            cams = self._cameras([e.camera_id for e in evs] + list(faults))
            rules = TicketRules(self.rules, faults, open_tickets)
            rows: list[OutboxRow] = []
            for e in evs:
                if e.kind != "state" or not e.to_state:
                    continue
                closed_before = len(rules.plan.closed)
                # a camera removed since (its last writes can trail the removal): the change is still
                # news for the webhooks, but no fault of a camera that is gone is tracked
                watch = self.tickets_on and e.camera_id in cams
                tid = rules.observe(Change(int(e.id), e.camera_id, int(e.at_us), e.from_state, e.to_state)) if watch else None
                rows += self._state_rows(e, cams.get(e.camera_id), tid)
                for ticket_id, at in rules.plan.closed[closed_before:]:
                    rows += self._ticket_rows("ticket_closed", known[ticket_id], at, cams)
            plan = rules.due(now, {k: v.tags for k, v in cams.items()}) if self.tickets_on else rules.plan
            for nt in plan.opened:
                tid = self._write_ticket(c, nt)
                made = OpenTicket(tid, nt.element_tag, nt.element_value, nt.detected_us, {f.camera_id: None for f in nt.faults}, nt.fault)
                rows += self._ticket_rows("ticket_opened", made, now, cams, nt.title)
                log.warning("ticket %d opened: %s (%s)", tid, nt.title, ", ".join(f.camera_id for f in nt.faults))
            if plan.joined:
                c.execute(
                    sa.insert(ticket_cameras),
                    [{"ticket_id": tid, "camera_id": f.camera_id, "state": f.state, "since_us": f.since_us} for tid, f in plan.joined],
                )
            if plan.recovered:
                c.execute(_RECOVERED, [{"_tid": tid, "_cid": cam, "recovered_us": at} for tid, cam, at in plan.recovered])
            if plan.closed:
                c.execute(_CLOSED, [{"_tid": tid, "closed_us": at} for tid, at in plan.closed])
            for tid, _at in plan.closed:
                log.info("ticket %d closed: every camera is back", tid)
            self._write_faults(c, before, faults)
            enqueue(c, rows, now)
            if evs:
                move_cursor(c, int(evs[-1].id))
                cursor = int(evs[-1].id)
        self._cursor = cursor
        self._next_due_us = self._next_due(faults)
        self.steps += 1
        if rows:
            self._wake_all()
        return len(evs)

    def _next_due(self, faults: dict[str, Fault]) -> int | None:
        due = [
            f.since_us + int(self.rules.open_after_s[f.state] * 1_000_000)
            for f in faults.values()
            if f.ticket_id is None and f.state in self.rules.open_after_s
        ]
        return min(due) if due and self.tickets_on else None

    def _wake_all(self) -> None:
        for ev in self._wake.values():
            ev.set()

    @staticmethod
    def _open_tickets(c: sa.Connection) -> dict[int, OpenTicket]:
        out = {
            int(r.id): OpenTicket(int(r.id), r.element_tag, r.element_value, int(r.detected_us), {}, r.fault)
            for r in c.execute(sa.select(tickets).where(tickets.c.status == "open"))
        }
        if out:
            for r in c.execute(sa.select(ticket_cameras).where(ticket_cameras.c.ticket_id.in_(list(out)))):
                out[int(r.ticket_id)].cameras[r.camera_id] = r.recovered_us
        return out

    @staticmethod
    def _write_ticket(c: sa.Connection, nt: NewTicket) -> int:
        tid = int(
            c.execute(
                sa.insert(tickets).values(
                    status="open",
                    fault=nt.fault,
                    element_tag=nt.element_tag,
                    element_value=nt.element_value,
                    title=nt.title,
                    detected_us=nt.detected_us,
                    opened_us=nt.opened_us,
                )
            ).inserted_primary_key[0]
        )
        c.execute(
            sa.insert(ticket_cameras),
            [{"ticket_id": tid, "camera_id": f.camera_id, "state": f.state, "since_us": f.since_us} for f in nt.faults],
        )
        for f in nt.faults:
            f.ticket_id = tid
        nt.id = tid
        return tid

    @staticmethod
    def _write_faults(c: sa.Connection, before: dict[str, tuple[str, int, int | None]], faults: dict[str, Fault]) -> None:
        """What changed in `camera_faults`, in three batched statements (a city-wide outage is 4,470 rows)."""
        gone = [k for k in before if k not in faults]
        if gone:
            c.execute(sa.delete(camera_faults).where(camera_faults.c.camera_id.in_(gone)))
        added = [
            {"camera_id": k, "state": f.state, "since_us": f.since_us, "ticket_id": f.ticket_id}
            for k, f in faults.items()
            if k not in before
        ]
        if added:
            c.execute(sa.insert(camera_faults), added)
        changed = [
            {"_cid": k, "state": f.state, "since_us": f.since_us, "ticket_id": f.ticket_id}
            for k, f in faults.items()
            if k in before and before[k] != (f.state, f.since_us, f.ticket_id)
        ]
        if changed:
            c.execute(_FAULT_UPDATE, changed)

    # ---- outbox rows

    def _state_rows(self, e: Any, cam: Camera | None, ticket_id: int | None) -> list[OutboxRow]:
        tags = dict(cam.tags) if cam else {}
        wanting = [h for h in self.hooks if h.wants((e.from_state, e.to_state), tags)]
        if not wanting:
            return []
        delivery_id = f"event-{e.id}"
        text = body(
            {
                "id": delivery_id,
                "type": "state",
                "camera_id": e.camera_id,
                "camera_name": (cam.name if cam else "") or e.camera_id,
                "tags": tags,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "at": rfc3339(int(e.at_us)),
                "reason": e.reason or "",
                "ticket_id": ticket_id,
            }
        )
        return [OutboxRow(h.name, e.camera_id, delivery_id, text) for h in wanting]

    def _ticket_rows(self, kind: str, t: OpenTicket, at_us: int, cams: dict[str, Camera], title: str = "") -> list[OutboxRow]:
        """`ticket_opened` / `ticket_closed`, for the webhooks that want the ticket's fault on one of its cameras."""
        opened = kind == "ticket_opened"
        return ticket_rows(
            [h.cfg for h in self.hooks],
            kind,
            ticket_id=t.id,
            fault=t.fault,
            element=(t.element_tag, t.element_value),
            cameras={i: ((cams[i].name, cams[i].tags) if i in cams else ("", {})) for i in t.cameras},
            at_us=at_us,
            reason=title if opened else "every camera is back",
            from_state=None if opened else t.fault,
            to_state=t.fault if opened else ONLINE,
            extra=None if opened else {"close_reason": "recovered"},
        )

    # ---- deliverers

    def _deliver_loop(self, hook: Hook) -> None:
        down = Backoff(self.cfg.retry_initial_s, max(self.cfg.retry_initial_s, self.cfg.retry_max_s))
        wake = self._wake[hook.name]
        with httpx.Client() as client:
            while not self._stop.is_set():
                wait_s = 1.0
                try:
                    if self.holder:
                        wait_s = self._deliver_pass(hook, client, down)
                except Exception as e:  # noqa: BLE001 - the catalog may be down: retry
                    log.warning("notifier: %s: %s; will retry", hook.name, e)
                    wait_s = 2.0
                if down.attempt:  # the receiver is down: new changes do not cut the backoff short
                    self._stop.wait(wait_s)
                elif wait_s > 0:
                    wake.wait(wait_s)
                wake.clear()

    def _deliver_pass(self, hook: Hook, client: httpx.Client, down: Backoff) -> float:
        """Send what is due; returns how long to wait before the next pass (0: go on at once)."""
        rows = pending(self.catalog, hook.name)
        if not rows:
            return 1.0
        now = self._now_us()
        blocked: set[str] = set()
        done: list[int] = []
        soonest: int | None = None
        try:
            for r in rows:
                if self._stop.is_set():
                    break
                if r.order_key in blocked:
                    continue
                if r.next_us > now:
                    blocked.add(r.order_key)
                    soonest = r.next_us if soonest is None else min(soonest, r.next_us)
                    continue
                a = hook.send(client, r.body, r.delivery_id)
                if a.ok:
                    done.append(r.id)
                    if len(done) >= MARK_EVERY:
                        mark_delivered(self.catalog, hook.name, done, self._now_us())
                        done = []
                    continue
                if a.retry_all:
                    delay = down.next_delay()
                    if down.attempt <= 3 or down.attempt % 20 == 0:
                        log.warning("webhook %s: %s; %d waiting, next try in %.1f s", hook.name, a.error, len(rows), delay)
                    mark_failed(self.catalog, hook.name, None, a.error, self._now_us(), 0)
                    return delay
                b = Backoff(self.cfg.retry_initial_s, max(self.cfg.retry_initial_s, self.cfg.retry_max_s))
                b.attempt = min(r.attempts, 30)
                nxt = self._now_us() + int(b.next_delay() * 1_000_000)
                log.warning("webhook %s refused %s (%s); retried later", hook.name, r.delivery_id, a.error)
                mark_failed(self.catalog, hook.name, r.id, a.error, self._now_us(), nxt)
                blocked.add(r.order_key)
                soonest = nxt if soonest is None else min(soonest, nxt)
        finally:
            mark_delivered(self.catalog, hook.name, done, self._now_us())
        if down.attempt:
            log.info("webhook %s: delivering again", hook.name)
        down.reset()
        if len(rows) == 200 and not blocked:
            return 0.0
        if soonest is not None:
            return max(0.05, min(1.0, (soonest - self._now_us()) / 1e6))
        return 0.0 if not blocked and len(rows) else 1.0
