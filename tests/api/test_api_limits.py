"""What a request may cost: the key before the body, body caps (413), slow headers and bodies
timed out (408) — against the real HTTP server (uvicorn with api/serving.py's protocol)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.serving import server_config
from tests.api.conftest import ApiEnv, make_env
from harness.flood import push_for, push_until_answered
from harness.flood import read_reply as _read_response
from harness.servers import free_port, self_signed_cert


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextmanager
def _served(env: ApiEnv) -> Iterator[int]:
    api = env.ctx.settings.api
    api.port = free_port()
    server = uvicorn.Server(server_config(env.app, api, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield api.port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiEnv, int]]:
    env = make_env(
        tmp_path_factory.mktemp("limits"), max_body_bytes=64 * 1024, header_timeout_s=1.0, body_timeout_s=1.0
    )
    with _served(env) as port:
        yield env, port


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _status(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:100]
    return int(raw.split(b" ", 2)[1])


def test_unauthenticated_huge_chunked_post_is_401_unread(limited: tuple[ApiEnv, Any]) -> None:
    """500 MB chunked with no key: 401 before the body is read, connection closed, memory flat."""
    _, port = limited
    total = 500 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    rss0 = _rss_bytes()
    s = _connect(port)
    s.sendall(
        b"POST /api/cameras HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    t0 = time.monotonic()
    sent, reply = push_until_answered(s, framed, total, 120)
    reply += _read_response(s)
    s.close()
    assert _status(reply) == 401, reply[:200]
    assert b"connection: close" in reply.lower()
    assert sent < 64 * 1024 * 1024, f"the client could push {sent / 1e6:.0f} MB into the server"
    grew = _rss_bytes() - rss0
    print(f"500 MB unauthenticated chunked POST: {_status(reply)} after {sent / 1e6:.1f} MB pushed, "
          f"{time.monotonic() - t0:.2f} s, RSS {rss0 / 1e6:.0f} → {(rss0 + grew) / 1e6:.0f} MB")
    assert grew < 40 * 1024 * 1024, f"RSS grew by {grew / 1e6:.0f} MB"


def test_body_caps_are_413(limited: tuple[ApiEnv, Any]) -> None:
    env, port = limited
    auth = f"Authorization: Bearer {env.keys['admin']}\r\n".encode()
    # declared too large: refused before a byte of body is read
    s = _connect(port)
    s.sendall(b"POST /api/cameras HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 10000000\r\n\r\n")
    raw = _read_response(s)
    assert _status(raw) == 413 and b"at most 65536 bytes" in raw
    # chunked, growing past the cap
    s = _connect(port)
    s.sendall(b"POST /api/cameras HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(20):
            s.sendall(b"4000\r\n" + b"{" * 0x4000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = _read_response(s)
    assert _status(raw) == 413, raw[:200]
    # a small body still works
    s = _connect(port)
    body = b'{"id": "small", "url": "rtsp://10.0.0.1/x"}'
    s.sendall(
        b"POST /api/cameras HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    assert _status(_read_response(s)) == 201


def test_slow_body_is_408(limited: tuple[ApiEnv, Any]) -> None:
    env, port = limited
    s = _connect(port)
    t0 = time.monotonic()
    s.sendall(
        b"POST /api/cameras HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + env.keys["admin"].encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\""
    )
    raw = _read_response(s)
    assert _status(raw) == 408, raw[:200]
    assert time.monotonic() - t0 < 8


def test_a_body_the_route_never_reads_ends_the_connection(limited: tuple[ApiEnv, Any]) -> None:
    """A valid key's GET with an endless chunked body: the route answers without reading it, and
    the connection closes with the answer. Before, uvicorn went on reading and discarding the body
    for as long as the client sent it (no deadline applies to a body nobody reads)."""
    env, port = limited
    s = _connect(port)
    s.sendall(
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + env.keys["viewer"].encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    sent, reply = push_until_answered(s, chunk, 64 << 20, 10)
    reply += _read_response(s, 3.0)  # closed by the server: returns at once; still open: 3 s of silence
    assert _status(reply) == 200, reply[:200]
    assert b"connection: close" in reply.lower()
    pushed_after = push_for(s, chunk, 3.0)  # the server must not take more of the body
    s.close()
    print(f"GET with an endless chunked body: {_status(reply)}, then {pushed_after / 1e6:.1f} MB more taken in 3 s")
    assert pushed_after < 8 << 20, f"the server read {pushed_after / 1e6:.0f} MB more of a body nobody reads"


@pytest.mark.parametrize("start", [b"", b"GET /api/status HTTP/1.1\r\nHost: x\r\n"], ids=["idle", "slow-headers"])
def test_slow_headers_are_cut(limited: tuple[ApiEnv, Any], start: bytes) -> None:
    _, port = limited
    s = _connect(port)
    t0 = time.monotonic()
    s.sendall(start)
    raw = _read_response(s, timeout=15)
    took = time.monotonic() - t0
    assert took < 8, f"the server held a connection without headers for {took:.1f} s"
    assert raw == b"" or _status(raw) == 408


@pytest.mark.parametrize(
    ("start", "fill"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a" * 65536),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X-Padding-Header: " + b"b" * 44 + b"\r\n"),
        (b"GET /health?pad=", b"c" * 65536),
    ],
    ids=["one-huge-header", "many-headers", "huge-url"],
)
def test_huge_headers_are_431_unbuffered(limited: tuple[ApiEnv, Any], start: bytes, fill: bytes) -> None:
    """Headers are capped in size, not only in time: within the header deadline a client used to
    push hundreds of MB of header lines, all held by the server (300 MB in 10 s: RSS 112 → 1,195 MB)."""
    _, port = limited
    blob = fill * max(1, 65536 // len(fill))
    rss0 = _rss_bytes()
    s = _connect(port)
    s.sendall(start)
    sent, reply = push_until_answered(s, blob, 256 * 1024 * 1024, 5)
    reply += _read_response(s)
    s.close()
    grew = _rss_bytes() - rss0
    print(f"{len(start) + sent} header bytes pushed → {reply[:40]!r}, RSS +{grew / 1e6:.0f} MB")
    assert _status(reply) == 431, reply[:200]
    # what the client got rid of includes the kernel's socket buffers (a few MB on loopback)
    assert sent < 16 * 1024 * 1024, f"the client could push {sent / 1e6:.0f} MB of headers"
    assert grew < 20 * 1024 * 1024, f"RSS grew by {grew / 1e6:.0f} MB"


def test_headers_up_to_the_cap_are_served(limited: tuple[ApiEnv, Any]) -> None:
    """A request with large but legitimate headers (48 KiB of cookies, say) is answered."""
    _, port = limited
    s = _connect(port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: " + b"k" * 48 * 1024 + b"\r\n\r\n")
    assert _status(_read_response(s)) == 200


def _guesses_with_forwarded_for(port: int, n: int) -> dict[int, int]:
    """`n` wrong keys, each claiming another client address in X-Forwarded-For."""
    import httpx

    codes: dict[int, int] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        for i in range(n):
            h = {"Authorization": f"Bearer vgl_{i:012x}_guess", "X-Forwarded-For": f"10.7.{i // 200}.{i % 200 + 1}"}
            st = c.get("/api/status", headers=h).status_code
            codes[st] = codes.get(st, 0) + 1
    return codes


def test_forwarded_for_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: any process on the
    machine could give each guessed key another address and never meet the failed-key limit
    (60 guesses: 60 × 401). Without `api.trusted_proxies` the connection's address counts."""
    env = make_env(tmp_path / "direct")
    with _served(env) as port:
        codes = _guesses_with_forwarded_for(port, 60)
    assert codes.get(429, 0) >= 30, codes
    # behind a reverse proxy the operator names, its X-Forwarded-For is the client's address
    env = make_env(tmp_path / "proxied", trusted_proxies=["127.0.0.1"])
    with _served(env) as port:
        assert _guesses_with_forwarded_for(port, 60) == {401: 60}


def test_websocket_messages_are_capped(tmp_path: Path) -> None:
    """The live WebSockets only send; what a client sends is read and dropped. uvicorn took
    messages of up to 16 MiB: 20 viewer connections of 16 MiB messages took a running API
    process from 112 to 950 MB (850 MB after). A message above 64 KiB now closes the socket (1009)."""
    import asyncio

    import httpx
    import websockets

    env = make_env(tmp_path / "ws")
    env.add_camera("cam1")
    with _served(env) as port:
        url = httpx.get(f"http://127.0.0.1:{port}/api/cameras/cam1/live-ws-url", headers=env.auth("viewer")).json()["url"]

        async def send(size: int) -> int | None:
            async with websockets.connect(f"ws://127.0.0.1:{port}{url}", max_size=None, compression=None) as ws:
                await ws.send(b"x" * size)
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 3)
                except asyncio.TimeoutError:
                    return None  # still open
                except websockets.ConnectionClosed as e:
                    return e.rcvd.code if e.rcvd else None

        assert asyncio.run(send(1 << 20)) == 1009
        assert asyncio.run(send(100)) is None  # a small message is dropped, the view goes on


def test_https_with_a_certificate(tmp_path: Path) -> None:
    import ssl

    import httpx

    cert, key = self_signed_cert(tmp_path)
    env = make_env(tmp_path / "tls", tls_cert=cert, tls_key=key)
    with _served(env) as port:
        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=ctx, timeout=10) as c:
            r = c.get(f"https://127.0.0.1:{port}/api/status", headers=env.auth("viewer"))
            assert r.status_code == 200 and r.http_version == "HTTP/1.1"
        # the same port does not speak plain HTTP: nothing readable comes back
        s = _connect(port)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not _read_response(s, timeout=5).startswith(b"HTTP/1.1 200")


def test_auth_or_tls_off_beyond_loopback_is_said_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from core.settings import ApiConfig

    env = make_env(tmp_path / "loud")
    with caplog.at_level("WARNING", logger="vigil.api"):
        server_config(env.app, ApiConfig(host="0.0.0.0", auth=False))
    text = caplog.text
    assert "API AUTH IS OFF on 0.0.0.0" in text and "API TLS IS OFF on 0.0.0.0" in text
    caplog.clear()
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    with caplog.at_level("WARNING", logger="vigil.api"):
        server_config(env.app, ApiConfig(host="127.0.0.1", auth=False))  # loopback: the operator's own machine
        server_config(env.app, ApiConfig(host="10.0.0.2", tls_cert=cert, tls_key=key))
    assert caplog.text == ""
