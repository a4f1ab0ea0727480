"""The status document built in a child process, so its GIL time stays out of the serving process.

Why: at 4,470 cameras and 1,000 status writes/s a refresh holds the GIL for ~30 ms of CPU (the
status query and its rows, JSON for the changed cameras, the join, the counts); in the API
process that thread took 50-80 ms of wall time per second from the event loop (the loop waits up
to a switch interval, 5 ms, for the GIL after each of its own I/O calls), which was the tail of a
closed-loop poll. Here a child (`python -m api.status_child`, its own interpreter and catalog
connection) runs the same `StatusBuilder` and hands back the encoded variants; the parent's
refresher only waits on a socket and unpickles ~1.3 MB of bytes.

Protocol (one request at a time, pickled over a socketpair; the catalog URL is the first message,
not an argument: it may hold a password):
- `("build", now_us, mono, hot, full_every_s, reload)` → `("ok", (generated_us, {key: Encoded},
  reloaded))`: the whole document and the `hot` filters, and whether it read everything again;
- `("variant", key)` → `("ok", Encoded)`: a filter nobody asked for before, on the last build;
- any failure → `("error", traceback)`; the child keeps serving. EOF (the parent closed or died)
  ends it. A child that exits or stops answering (`REPLY_TIMEOUT_S`) is killed; the board builds
  in its own process meanwhile and starts a new child a minute later.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from api.status_builder import Encoded, FilterKey

__all__ = ["BuilderError", "BuilderGone", "BuilderProcess", "Built", "can_open_elsewhere"]

Built = tuple[int, dict[FilterKey, Encoded], bool]  # generated_us, variants, whether it reloaded everything
# A build takes ~0.1 s (a full reload at 4,470 cameras ~0.5 s on a loaded machine): a child that
# has not answered in this long is stuck, and is replaced.
REPLY_TIMEOUT_S = 30.0


class BuilderError(RuntimeError):
    """The child failed a request (its traceback is the message); it is still serving."""


class BuilderGone(BuilderError):
    """The child exited, or did not answer within `REPLY_TIMEOUT_S`."""


def can_open_elsewhere(url: str) -> bool:
    """True when another process can open this catalog (not an in-memory SQLite database)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return not (u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:"))


class BuilderProcess:
    """The parent's handle on the child: started at once (it does not wait for the child to be up:
    the first request does), one request at a time from any thread."""

    def __init__(self, catalog_url: str) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        # the parent's import path, as multiprocessing's spawn passes it (a checkout run from its
        # directory, a bench script that put its tree first)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "api.status_child", str(child.fileno())],
            pass_fds=(child.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._lock = threading.Lock()
        self._conn.send(catalog_url)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _call(self, msg: tuple[Any, ...]) -> Any:
        with self._lock:
            try:
                self._conn.send(msg)
                if not self._conn.poll(REPLY_TIMEOUT_S):
                    raise BuilderGone(f"status builder process: no answer in {REPLY_TIMEOUT_S:.0f} s")
                kind, value = self._conn.recv()
            except (OSError, EOFError) as e:
                raise BuilderGone(f"status builder process gone ({e!r})") from e
        if kind != "ok":
            raise BuilderError(value)
        return value

    def build(self, now_us: int, mono: float, hot: Sequence[FilterKey], full_every_s: float, reload: bool) -> Built:
        return self._call(("build", now_us, mono, list(hot), full_every_s, reload))  # type: ignore[no-any-return]

    def variant(self, key: FilterKey) -> Encoded:
        return self._call(("variant", key))  # type: ignore[no-any-return]

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the child to stop (EOF), then end it if it does not."""
        with self._lock:
            self._conn.close()
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout_s)


def _serve(conn: Connection) -> None:
    from api.status_builder import StatusBuilder
    from storage.catalog import Catalog
    from storage.catalog.base import POOL_STATUS_CHILD

    catalog = Catalog(conn.recv(), create=False, pool=POOL_STATUS_CHILD)
    builder = StatusBuilder(catalog)
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            try:
                if msg[0] == "build":
                    _, now_us, mono, hot, full_every_s, reload = msg
                    if reload:
                        builder.forget_cameras()
                    reloads = builder.reloads
                    doc = builder.build(now_us, mono, hot, full_every_s)
                    variants = {k: doc.variants[k] for k in [((), ()), *hot]}
                    reply: tuple[str, Any] = ("ok", (doc.generated_us, variants, builder.reloads != reloads))
                elif msg[0] == "variant":
                    if builder.doc is None:
                        raise BuilderError("no document built yet")
                    reply = ("ok", builder.doc.variant(*msg[1]))
                else:
                    raise BuilderError(f"unknown request {msg[0]!r}")
            except Exception:  # noqa: BLE001 - reported to the parent, which logs it and decides
                reply = ("error", traceback.format_exc())
            conn.send(reply)
    finally:
        catalog.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal reaches the whole group: the parent stops it
    _serve(Connection(int(sys.argv[1])))
