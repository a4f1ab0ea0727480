"""Raw-socket floods for the request-limit tests and `bench/pentest.py`: push bytes at an HTTP server
as fast as it takes them and stop the moment it answers or hangs up, as an attacker's client would
(httpx would not send an endless header or body)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

__all__ = ["push_for", "push_until_answered", "read_reply", "status_of"]


def push_until_answered(
    s: socket.socket, blob: bytes, max_bytes: int, max_s: float, tick: Callable[[int], None] | None = None
) -> tuple[int, bytes]:
    """Send `blob` again and again on a connected socket (its request already begun) until the
    server answers or closes, `max_bytes` are sent or `max_s` pass; `tick(sent)` after each send.
    Returns (bytes sent, what the server sent meanwhile); the socket is left blocking."""
    s.setblocking(False)
    sent, reply = 0, b""
    t0 = time.monotonic()
    try:
        while sent < max_bytes and time.monotonic() - t0 < max_s:
            try:
                reply += s.recv(65536)
                break  # answered (or closed) before all was sent
            except BlockingIOError:
                pass
            try:
                sent += s.send(blob)
            except BlockingIOError:
                time.sleep(0.001)
            if tick is not None:
                tick(sent)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.setblocking(True)
    return sent, reply


def push_for(s: socket.socket, blob: bytes, seconds: float) -> int:
    """Send `blob` again and again for `seconds` (or until the server hangs up); the bytes the
    server took. The socket is left non-blocking."""
    s.setblocking(False)
    taken, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            taken += s.send(blob)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    return taken


def read_reply(s: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` of silence)."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def status_of(raw: bytes) -> int | None:
    """The status code of a raw HTTP/1.x reply, None when there is none."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None
