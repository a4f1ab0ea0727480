"""The API under test, as a `vigil run` process would hold it: a real SQLite catalog file, a store,
keys for every role, the app in a TestClient or under uvicorn on a free port, and a watch on every
response body for the cameras' password. Used by tests/api and by bench/status_latency.py.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from api.dependencies import ApiContext
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import ApiConfig, EvidenceConfig, Settings
from harness.recorded import us
from harness.servers import free_port
from storage.api_keys import create_key
from storage.catalog import Camera, Catalog
from storage.object_store import LocalStore, ObjectStore

__all__ = [
    "BODIES_SEEN", "CAMERA_PASSWORD", "CAMERA_USER", "LEAKS", "ROLES", "T0", "ApiEnv", "Leak", "LeakWatch", "camera_url",
    "make_env", "serve",
]

CAMERA_PASSWORD = "Pa55-w0rd-9f3bX"  # every camera URL in these tests carries it; no response may
CAMERA_USER = "operator"
ROLES = ("viewer", "technician", "investigator", "admin")
T0 = us(1714557600)  # 2024-05-01T10:00:00Z


def camera_url(host: str = "10.1.2.3", path: str = "/stream1") -> str:
    return f"rtsp://{CAMERA_USER}:{CAMERA_PASSWORD}@{host}:554{path}"


# ---- the password watch -------------------------------------------------------------------------


@dataclass
class Leak:
    path: str
    snippet: str


LEAKS: list[Leak] = []
BODIES_SEEN = [0]


class LeakWatch:
    """ASGI wrapper: records any response (headers or body) that contains the cameras' password.
    Bodies sent with `Content-Encoding: gzip` are decoded first (the compressed bytes would hide it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secret = CAMERA_PASSWORD.encode()
        if secret in scope.get("path", "").encode() or secret in scope.get("query_string", b""):
            # the request itself carries it (a fuzzer can mine it from this file): an error message
            # that echoes the request is not a leak of a stored credential
            await self.app(scope, receive, send)
            return

        gzipped = False
        chunks: list[bytes] = []

        def check(body: bytes) -> None:
            if secret in body:
                i = body.index(secret)
                LEAKS.append(Leak(scope["path"], body[max(0, i - 60) : i + 20].decode(errors="replace")))

        async def watch(message: Message) -> None:
            nonlocal gzipped
            if message["type"] == "http.response.start":
                for k, v in message.get("headers", []):
                    if secret in v:
                        LEAKS.append(Leak(scope["path"], f"header {k!r}"))
                    if k.lower() == b"content-encoding" and b"gzip" in v.lower():
                        gzipped = True
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                BODIES_SEEN[0] += 1
                if not gzipped:
                    check(body)
                else:  # a gzip body is checked as the client reads it: decoded, when complete
                    chunks.append(body)
                    if not message.get("more_body", False):
                        raw = b"".join(chunks)
                        try:
                            check(gzip.decompress(raw))
                        except (OSError, EOFError):  # not gzip after all: check it as it is
                            check(raw)
            await send(message)

        await self.app(scope, receive, watch)


# ---- environments -------------------------------------------------------------------------------


@dataclass
class ApiEnv:
    ctx: ApiContext
    app: Any
    keys: dict[str, str]
    workdir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def client(self) -> TestClient:
        return TestClient(LeakWatch(self.app))

    def add_camera(self, camera_id: str, **kw: Any) -> Camera:
        cam = Camera(id=camera_id, url=kw.pop("url", camera_url(path=f"/{camera_id}")), **kw)
        self.catalog.upsert_camera(cam, T0)
        return cam


def make_env(
    workdir: Path,
    *,
    store: ObjectStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
    auth: bool = True,
    spool: Any = None,
    stats: Callable[[], dict[str, float]] | None = None,
    catalog: Catalog | None = None,
    node_id: str = "",
    evidence: EvidenceConfig | None = None,
    **api: Any,
) -> ApiEnv:
    """`node_id` and a shared `catalog` and `store`: two envs are two nodes of one cluster."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=workdir, api=ApiConfig(auth=auth, **api), node_id=node_id,
                        evidence=evidence or EvidenceConfig())
    catalog = catalog or Catalog(f"sqlite:///{workdir / 'catalog.db'}")
    store = store or LocalStore(workdir / "objects")
    ctx = ApiContext(settings=settings, catalog=catalog, store=store, spool=spool, clock=clock, stats=stats)
    keys = {role: create_key(catalog, role, f"test-{role}") for role in ROLES}
    return ApiEnv(ctx=ctx, app=create_app(ctx), keys=keys, workdir=workdir)


# ---- uvicorn on a free port ---------------------------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` (wrapped in the password watch) with uvicorn on 127.0.0.1:<free port>."""
    port = free_port()
    config = uvicorn.Config(
        LeakWatch(app),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    ready = threading.Event()

    def _wait() -> None:
        while not server.started and thread.is_alive():
            ready.wait(0.01)

    _wait()
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
