"""Event ids become visible in order on PostgreSQL, so a reader paging by `id > cursor` (the SSE
stream, /api/events) never steps past an event that commits later with a smaller id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from storage.catalog import Catalog, Event, FeedStatus

T0 = 1_764_000_000_000_000


def _until(cond: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_an_event_committed_first_with_a_larger_id_stays_hidden_until_the_earlier_one_commits(pg_url: str) -> None:
    cat = Catalog(pg_url)
    for cam in ("a", "b"):
        cat.put_status(FeedStatus(cam, "online", T0, T0))
    cursor = cat.add_event(Event("x", T0, "note"))
    me = sa.create_engine(pg_url)
    try:
        with me.connect() as hold:
            hold.execute(sa.text("SELECT 1 FROM feed_status WHERE camera_id = 'a' FOR UPDATE"))

            def waiting() -> int:  # catalog sessions blocked on a lock, apart from our own
                with me.connect() as c:
                    q = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    return int(c.execute(sa.text(q)).scalar_one())

            # writer A: its event gets the next id, then the batch waits on camera a's row (held above)
            early = Event("b", T0 + 1, "state", "online", "frozen")
            a = threading.Thread(target=cat.put_statuses_with_events,
                                 args=([(FeedStatus("b", "frozen", T0, T0), early), (FeedStatus("a", "online", T0, T0 + 1), None)],))
            a.start()
            _until(lambda: waiting() == 1, "writer A to hold its event's id and wait")
            # writer B: a later event, free to commit at once unless ids are ordered
            late = Event("x", T0 + 2, "note")
            b = threading.Thread(target=cat.add_event, args=(late,))
            b.start()
            _until(lambda: not b.is_alive() or waiting() == 2, "writer B to finish or queue")
            assert cat.events_since(cursor) == []  # nothing past the cursor while A's id is pending
            hold.rollback()
        a.join(10)
        b.join(10)
        seen = cat.events_since(cursor)
        assert [e.id for e in seen] == [early.id, late.id] and early.id is not None and late.id is not None
        assert early.id < late.id
    finally:
        me.dispose()
        cat.engine.dispose()
