"""Health events: cursor paging for pollers; SSE that is fast (< 1 s) and resumable (Last-Event-ID)."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from storage.catalog import Event
from tests.api.conftest import T0, ApiEnv, make_env, serve


def add(env: ApiEnv, cam: str, to_state: str, at_us: int = T0) -> int:
    return env.catalog.add_event(Event(camera_id=cam, at_us=at_us, kind="state", from_state="online",
                                       to_state=to_state, reason="test", figures={"diff": 0.01}))  # fmt: skip


def test_cursor_paging(env: ApiEnv) -> None:
    ids = [add(env, "a" if i % 2 else "b", "frozen", T0 + i) for i in range(7)]
    h = env.auth("viewer")
    with env.client() as c:
        r = c.get("/api/events?limit=3", headers=h).json()
        assert [e["id"] for e in r["events"]] == ids[:3] and r["next_cursor"] == ids[2]
        e0 = r["events"][0]
        assert e0["at_utc"] == "2024-05-01T10:00:00Z" and e0["figures"] == {"diff": 0.01}
        r = c.get(f"/api/events?since={r['next_cursor']}&limit=100", headers=h).json()
        assert [e["id"] for e in r["events"]] == ids[3:]
        r = c.get(f"/api/events?since={r['next_cursor']}", headers=h).json()
        assert r == {"events": [], "next_cursor": ids[-1]}
        only_a = c.get("/api/events?camera=a", headers=h).json()["events"]
        assert {e["camera_id"] for e in only_a} == {"a"} and len(only_a) == 3
        timed = c.get("/api/events?start=1714557600.000002&end=1714557600.000004", headers=h).json()["events"]
        assert [e["id"] for e in timed] == ids[2:4]
        assert c.get("/api/events?limit=0", headers=h).status_code == 422
        assert c.get("/api/events?start=yesterday", headers=h).status_code == 422


class SseReader:
    """Reads an SSE stream in a thread; events land in a queue with their arrival time."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=30))
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        assert self._ready.wait(10), "stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            self._read(url, headers)
        except (httpx.HTTPError, OSError, RuntimeError):
            if not self._stop.is_set():
                raise

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with self._client.stream("GET", url, headers=headers) as r:
            self._sock = r.extensions["network_stream"].get_extra_info("socket")
            self.status = r.status_code
            self._ready.set()
            ev: dict[str, Any] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if "data" in ev:
                        ev["arrived"] = time.monotonic()
                        self.events.put(ev)
                    ev = {}
                elif line.startswith(":"):
                    continue
                else:
                    k, _, v = line.partition(":")
                    ev[k] = v.strip()

    def get(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        """Hang up (shutting the socket down wakes the blocked read; the server sees the disconnect)."""
        self._stop.set()
        with contextlib.suppress(OSError, AttributeError):
            self._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        self._thread.join(5)
        self._client.close()


def test_sse_delivers_within_a_second_and_resumes(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.add_camera("a")
    before = add(env, "a", "online")
    with serve(env.app) as base:
        h = env.auth("viewer")
        reader = SseReader(f"{base}/api/events/stream?camera=a", h)
        assert reader.status == 200
        latencies = []
        got = []
        for state in ("frozen", "online", "black"):
            t = time.monotonic()
            eid = add(env, "a", state)
            add(env, "other", state)  # another camera's event: filtered out
            ev = reader.get()
            latencies.append(ev["arrived"] - t)
            assert int(ev["id"]) == eid and ev["event"] == "state"
            assert json.loads(ev["data"])["to_state"] == state
            got.append(eid)
        assert max(latencies) < 1.0, latencies
        assert int(got[0]) > before  # a fresh stream starts after the newest event
        reader.close()

        # events that happen while nobody listens are delivered on reconnect with Last-Event-ID
        missed = [add(env, "a", s) for s in ("offline", "starting", "online")]
        reader = SseReader(f"{base}/api/events/stream?camera=a", {**h, "Last-Event-ID": str(got[-1])})
        assert [int(reader.get()["id"]) for _ in missed] == missed
        reader.close()

        # `since` works for clients that cannot set headers; `max_s` ends the stream
        r = httpx.get(f"{base}/api/events/stream?since={before}&camera=a&max_s=0.5", headers=h, timeout=10)
        ids = [int(line[4:]) for line in r.text.splitlines() if line.startswith("id: ")]
        assert ids == got + missed
        bad = httpx.get(f"{base}/api/events/stream", headers={**h, "Last-Event-ID": "x"}, timeout=10)
        assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]
