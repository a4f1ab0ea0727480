"""A real HTTP receiver for webhook tests: http.server in a thread on 127.0.0.1, which can go down
(its socket closed: connections refused) and come back on the same port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any

from harness.servers import free_port

__all__ = ["Delivery", "Receiver"]


@dataclass(frozen=True)
class Delivery:
    at: float  # time.time() when it arrived
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.port = free_port()
        self.status_for: Callable[[bytes], int] = lambda _raw: status
        self.got: list[Delivery] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with receiver._lock:
                    receiver.got.append(Delivery(time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(receiver.status_for(raw))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.got)

    def bodies(self) -> list[dict[str, Any]]:
        return [d.json for d in self.deliveries()]
