"""How the API is put on the network: uvicorn's settings, a deadline on request headers, TLS.

Why here and not in the app: these are properties of the HTTP server (connections, sockets,
certificates), the same for every app built by `api.app.create_app`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import ApiConfig

__all__ = ["WS_MAX_MESSAGE_BYTES", "HeaderDeadlineProtocol", "exposure_warnings", "is_loopback", "server_config"]

log = logging.getLogger("vigil.api")

_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
WS_MAX_MESSAGE_BYTES = 64 * 1024  # what a WebSocket client may send in one message (else close 1009)
_TOO_LARGE_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, plus: a request's headers must be complete within
    `header_timeout_s` of the connection opening (or of the request's first byte on a kept-alive
    connection); otherwise 408 and the connection is closed. uvicorn alone waits forever for a
    connection that sends nothing or one header line a minute (slowloris).

    And they must fit in `max_header_bytes` (request line included), else 431 and close: uvicorn's
    httptools protocol has no size limit of its own (its `h11_max_incomplete_event_size` applies to
    h11 only), so within the deadline one client could make it hold hundreds of MB of header lines.
    Counted per read: the server holds at most the cap plus one read (≤ 256 KiB) of a request's
    headers."""

    header_timeout_s = 10.0
    max_header_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = True  # the bytes arriving are a request's line and headers
        self._header_bytes = 0

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_408)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counted = self._in_headers
        super().data_received(data)
        if counted and self._in_headers and not self.transport.is_closing():
            # none of these bytes ended the headers: all of them were header bytes
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._disarm()
                self.transport.write(_TOO_LARGE_431)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers, self._header_bytes = True, 0  # what comes next is the next request's


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warnings(api: ApiConfig) -> list[str]:
    """What an operator must hear about when the API listens beyond this machine."""
    if is_loopback(api.host):
        return []
    out = []
    if not api.auth:
        out.append(f"API AUTH IS OFF on {api.host}:{api.port}: anyone who can reach it is an admin")
    if api.tls_cert is None:
        out.append(
            f"API TLS IS OFF on {api.host}:{api.port}: keys and video cross the network in clear "
            "(set api.tls_cert and api.tls_key)"
        )
    return out


def server_config(app: Any, api: ApiConfig, **extra: Any) -> uvicorn.Config:
    """uvicorn settings for the API: header deadline and size, keep-alive, proxies, TLS when configured."""
    protocol = type(
        "HeaderDeadline",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": api.header_timeout_s, "max_header_bytes": api.max_header_bytes},
    )
    kwargs: dict[str, Any] = dict(
        host=api.host,
        port=api.port,
        http=protocol,
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=1,
        h11_max_incomplete_event_size=api.max_header_bytes,
        # the live WebSockets only send: a client's message is read and dropped, so no client needs
        # uvicorn's 16 MiB (20 viewers sending them took the API process from 112 to 950 MB)
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        # X-Forwarded-For only from the proxies the operator names (uvicorn's own default believes
        # 127.0.0.1: any local process could then pick its address for each request)
        proxy_headers=bool(api.trusted_proxies),
        forwarded_allow_ips=list(api.trusted_proxies) or None,
    )
    if api.tls_cert is not None:
        kwargs.update(ssl_certfile=str(api.tls_cert), ssl_keyfile=str(api.tls_key))
    kwargs.update(extra)
    for line in exposure_warnings(api):
        log.warning("%s", line)
    return uvicorn.Config(app, **kwargs)
