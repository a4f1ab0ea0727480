"""Fault tickets through the API: the real notifier (notify/notifier.py, stepped by hand on a fake
clock) turns state events into tickets; technicians acknowledge, annotate and resolve them; the
report gives MTTA and MTTR split detect → acknowledge → repair."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from notify.notifier import Notifier
from storage.catalog import Catalog, Event
from storage.catalog.tables import camera_faults
from tests.api.conftest import T0, make_env
from harness.fakes import FakeClock
from core.settings import NotificationsConfig, TicketsConfig
from storage.outbox import pending
from storage.tickets import list_tickets

S = 1_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Catalog:
    if request.param == "sqlite":
        return Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    return Catalog(str(request.getfixturevalue("pg_url")))


def test_tickets_ack_notes_resolve_and_report(tmp_path: Path, catalog: Catalog) -> None:
    clock = FakeClock(T0 / S)
    env = make_env(tmp_path / "env", clock=clock, catalog=catalog)
    env.ctx.settings.tickets = TicketsConfig(open_after_s={"offline": 60, "frozen": 300})
    for cid in ("a", "b", "c"):
        env.add_camera(cid, tags={"district": "north", "uplink": "u1"})
    env.add_camera("d", tags={"district": "south", "uplink": "u2"})
    n = Notifier(env.ctx.settings, env.catalog, "node-1", clock=clock)
    n.step()  # the cursor starts at the log's end

    def ev(cid: str, at_s: float, frm: str, to: str) -> None:
        env.catalog.add_event(Event(cid, T0 + int(at_s * S), "state", frm, to, f"{to} for the test"))

    for cid, at in (("a", 1), ("b", 2), ("c", 3.5), ("d", 2)):
        ev(cid, at, "online", "offline")
    clock.advance(60)  # T0+60: nobody has been offline 60 s yet
    n.step()
    with env.client() as c:
        assert c.get("/api/tickets", headers=env.auth("viewer")).json() == {"tickets": []}
        clock.advance(2.5)  # T0+62.5: a, b, d past 60 s — c (3.5) not yet, but in a's window
        n.step()
        r = c.get("/api/tickets?status=open", headers=env.auth("viewer"))
        assert r.status_code == 200
        ts = r.json()["tickets"]
        assert len(ts) == 2
        group = next(t for t in ts if t["element"])
        single = next(t for t in ts if not t["element"])
        assert group["element"] == {"tag": "uplink", "value": "u1"} and group["districts"] == ["north"]
        assert [x["camera_id"] for x in group["cameras"]] == ["a", "b", "c"]
        assert group["detected_us"] == T0 + S and group["title"] == "uplink u1: 3 cameras offline"
        assert [x["camera_id"] for x in single["cameras"]] == ["d"] and single["title"] == "d offline"
        # filters
        north = c.get("/api/tickets?district=north", headers=env.auth("viewer")).json()["tickets"]
        assert [t["id"] for t in north] == [group["id"]]
        assert [t["id"] for t in c.get("/api/tickets?tag=uplink:u2", headers=env.auth("viewer")).json()["tickets"]] == [single["id"]]
        assert c.get("/api/tickets?tag=uplink", headers=env.auth("viewer")).status_code == 422
        assert c.get("/api/tickets?status=closed", headers=env.auth("viewer")).json() == {"tickets": []}
        assert c.get("/api/tickets/999", headers=env.auth("viewer")).status_code == 404

        # the role matrix on a real ticket: viewer and investigator may read, not work it
        gid, sid = group["id"], single["id"]
        for role in ("viewer", "investigator"):
            assert c.post(f"/api/tickets/{gid}/ack", headers=env.auth(role), json={"by": "x"}).status_code == 403
            assert c.post(f"/api/tickets/{gid}/notes", headers=env.auth(role), json={"text": "x"}).status_code == 403
            assert c.post(f"/api/tickets/{gid}/resolve", headers=env.auth(role)).status_code == 403
        assert c.get("/api/cameras/a/recordings?start=0&end=60", headers=env.auth("technician")).status_code == 403

        clock.advance(37.5)  # T0+100: acknowledged 99 s after detection
        r = c.post(f"/api/tickets/{gid}/ack", headers=env.auth("technician"), json={"by": "Budi"})
        assert r.status_code == 200 and r.json()["acked_by"] == "Budi" and r.json()["acked_us"] == T0 + 100 * S
        clock.advance(1)
        again = c.post(f"/api/tickets/{gid}/ack", headers=env.auth("admin"), json={"by": "Sari"}).json()
        assert (again["acked_by"], again["acked_us"]) == ("Budi", T0 + 100 * S)  # the first one stands
        r = c.post(f"/api/tickets/{gid}/notes", headers=env.auth("technician"), json={"text": "fibre cut near the pole"})
        assert r.status_code == 201 and [(x["author"], x["text"]) for x in r.json()["notes"]] == [("test-technician", "fibre cut near the pole")]
        assert c.post(f"/api/tickets/{gid}/notes", headers=env.auth("technician"), json={"text": ""}).status_code == 422

        # d's ticket: resolved by hand at T0+200 (acknowledged at the same moment)
        clock.advance(99)
        r = c.post(f"/api/tickets/{sid}/resolve", headers=env.auth("technician"), json={"by": "Rina", "note": "power cycled"})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "closed" and body["close_reason"] == "resolved"
        assert (body["closed_by"], body["closed_us"], body["acked_us"]) == ("Rina", T0 + 200 * S, T0 + 200 * S)
        assert c.post(f"/api/tickets/{sid}/resolve", headers=env.auth("technician")).status_code == 409

        # the uplink comes back: a at 250, b and c at 300 → closed by itself at 300
        ev("a", 250, "offline", "online")
        n.step()
        assert c.get(f"/api/tickets/{gid}", headers=env.auth("viewer")).json()["status"] == "open"
        ev("b", 300, "offline", "online")
        ev("c", 300, "offline", "online")
        clock.advance(100)
        n.step()
        t = c.get(f"/api/tickets/{gid}", headers=env.auth("technician")).json()
        assert (t["status"], t["close_reason"], t["closed_by"], t["closed_us"]) == ("closed", "recovered", None, T0 + 300 * S)
        assert [x["recovered_us"] for x in t["cameras"]] == [T0 + 250 * S, T0 + 300 * S, T0 + 300 * S]
        assert t["notes"][0]["text"] == "fibre cut near the pole"
        # d still offline after a hand resolve: no new ticket until it has recovered and failed again
        clock.advance(600)
        n.step()
        assert c.get("/api/tickets?status=open", headers=env.auth("viewer")).json() == {"tickets": []}

        # the report: uplink ticket detect T0+1 → ack T0+100 → repair T0+300; d's T0+2 → 200 → 200
        q = f"from={T0 // S}&to={T0 // S + 3600}"
        rows = {r["key"]: r for r in c.get(f"/api/report/tickets?{q}&by=district", headers=env.auth("technician")).json()["rows"]}
        assert rows["north"] == {"key": "north", "tickets": 1, "acknowledged": 1, "repaired": 1, "open": 0,
                                 "mtta_s": 99.0, "ack_to_repair_s": 200.0, "mttr_s": 299.0}  # fmt: skip
        assert (rows["south"]["mtta_s"], rows["south"]["ack_to_repair_s"], rows["south"]["mttr_s"]) == (198.0, 0.0, 198.0)
        per_cam = c.get(f"/api/report/tickets?{q}", headers=env.auth("viewer")).json()["rows"]
        assert [r["key"] for r in per_cam] == ["a", "b", "c", "d"]
        by_uplink = c.get(f"/api/report/tickets?{q}&by=uplink", headers={**env.auth("admin"), "Accept": "text/csv"})
        assert by_uplink.headers["content-type"].startswith("text/csv")
        got = list(csv.DictReader(io.StringIO(by_uplink.text)))
        assert [(r["key"], r["mtta_s"], r["mttr_s"]) for r in got] == [("u1", "99.0", "299.0"), ("u2", "198.0", "198.0")]
        # a window that holds none of them
        empty = c.get(f"/api/report/tickets?from={T0 // S + 10}&to={T0 // S + 3600}", headers=env.auth("viewer")).json()
        assert empty["rows"] == []


def test_a_removed_camera_leaves_its_open_tickets(tmp_path: Path, catalog: Catalog) -> None:
    """DELETE /api/cameras/{id} while the camera is in an open ticket: its place is marked recovered
    (`camera_removed`); a ticket with no camera left in a fault closes (`camera_removed`, by the
    key's name, with a `ticket_closed` webhook row); a correlated ticket whose other camera is still
    down stays open and closes when that one is back; a fault too young for a ticket opens none
    once its camera is gone; and the report does not count the removal as a repair."""
    clock = FakeClock(T0 / S)
    env = make_env(tmp_path / "env", clock=clock, catalog=catalog)
    env.ctx.settings.tickets = TicketsConfig(open_after_s={"offline": 60})
    env.ctx.settings.notifications = NotificationsConfig(webhooks=[{"url": "http://127.0.0.1:9/h", "secret": "k", "name": "ops"}])
    for cid in ("a", "b"):
        env.add_camera(cid, tags={"district": "north", "uplink": "u1"})
    env.add_camera("d", tags={"district": "south"})
    env.add_camera("e", tags={"district": "south"})
    n = Notifier(env.ctx.settings, env.catalog, "node-1", clock=clock)
    n.step()
    for cid, at in (("a", 1), ("b", 2), ("d", 1), ("e", 50)):
        env.catalog.add_event(Event(cid, T0 + at * S, "state", "online", "offline", "no packets"))
    clock.advance(62)
    n.step()
    ts = {t.title: t for t in list_tickets(env.catalog)}
    gid, sid = ts["uplink u1: 2 cameras offline"].id, ts["d offline"].id
    assert len(ts) == 2  # e's fault is 12 s old
    admin = env.auth("admin")
    with env.client() as c:
        # the group is acknowledged from the API: its webhook row is written with it
        assert c.post(f"/api/tickets/{gid}/ack", headers=env.auth("technician"), json={"by": "Budi"}).status_code == 200
        clock.advance(10)  # T0+72
        assert c.delete("/api/cameras/d", headers=admin).status_code == 204
        single = c.get(f"/api/tickets/{sid}", headers=admin).json()
        assert (single["status"], single["close_reason"], single["closed_by"], single["closed_us"]) == (
            "closed", "camera_removed", "test-admin", T0 + 72 * S)  # fmt: skip
        assert [(x["camera_id"], x["recovered_us"], x["recovered_reason"]) for x in single["cameras"]] == [
            ("d", T0 + 72 * S, "camera_removed")]  # fmt: skip
        assert c.delete("/api/cameras/a", headers=admin).status_code == 204
        group = c.get(f"/api/tickets/{gid}", headers=admin).json()
        assert group["status"] == "open"  # b is still down
        assert [(x["camera_id"], x["recovered_reason"]) for x in group["cameras"]] == [("a", "camera_removed"), ("b", None)]
        assert c.delete("/api/cameras/e", headers=admin).status_code == 204
        # e's worker wrote once more before it stopped: no fault of a camera that is gone comes back
        env.catalog.add_event(Event("e", T0 + 73 * S, "state", "offline", "starting", "worker restarted"))
        env.catalog.add_event(Event("e", T0 + 74 * S, "state", "starting", "offline", "cannot connect"))
        clock.advance(100)  # e would be 122 s offline: no ticket for a camera that is gone
        n.step()
        with env.catalog.engine.connect() as conn:
            assert "e" not in set(conn.execute(sa.select(camera_faults.c.camera_id)).scalars())
        assert [t["id"] for t in c.get("/api/tickets?status=open", headers=admin).json()["tickets"]] == [gid]
        env.catalog.add_event(Event("b", T0 + 180 * S, "state", "offline", "online", "back"))
        n.step()
        group = c.get(f"/api/tickets/{gid}", headers=admin).json()
        assert (group["status"], group["close_reason"], group["closed_us"]) == ("closed", "recovered", T0 + 180 * S)
        rows = {r["key"]: r for r in c.get(f"/api/report/tickets?from={T0 // S}&to={T0 // S + 3600}", headers=admin).json()["rows"]}
        assert (rows["d"]["tickets"], rows["d"]["repaired"], rows["d"]["open"], rows["d"]["mttr_s"]) == (1, 0, 0, None)
        assert rows["b"]["repaired"] == 1
        audit = c.get("/api/audit?action=camera.delete&camera=d", headers=admin).json()["entries"]
        assert [r["detail"].get("tickets_closed") for r in audit] == [[sid]]
    # the outbox: the acknowledgement and the close by removal, next to the notifier's rows
    bodies = {d.delivery_id: json.loads(d.body) for d in pending(env.catalog, "ops")}
    acked = bodies[f"ticket-{gid}-acked"]
    assert (acked["type"], acked["acked_by"], acked["cameras"], acked["from_state"]) == ("ticket_acked", "Budi", ["a", "b"], "offline")
    closed = bodies[f"ticket-{sid}-closed"]
    assert (closed["close_reason"], closed["closed_by"], closed["to_state"], closed["reason"]) == (
        "camera_removed", "test-admin", None, "camera d removed")  # fmt: skip
    assert closed["tags"] == {"district": "south"}  # the camera's tags, read before its row went
    assert bodies[f"ticket-{gid}-closed"]["close_reason"] == "recovered"
