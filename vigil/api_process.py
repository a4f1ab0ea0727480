"""The API in a process of its own, watched and restarted by the recording process.

Why: nothing an HTTP client does (a huge body, a flood, a bug that crashes or wedges the server)
may stop recording. The supervisor, its workers and the uploader live in the `vigil run` process;
the API (`python -m vigil.api_process`) is a child that reads the catalog, the object store and the
spool like any other reader. If it exits it is started again (1 s, doubling to 30 s while it keeps
dying); recording never waits on it.

The parent hands the child its settings as JSON on stdin (they may hold S3 and catalog passwords:
never on the command line) and shares the uploader's figures for /metrics through a small block
of shared memory (`SharedStats`, a memfd passed by descriptor), refreshed every half second.
"""

from __future__ import annotations

import logging
import mmap
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from core.settings import Settings

__all__ = ["ApiProcess", "SharedStats", "STAT_NAMES", "build_app"]

log = logging.getLogger("vigil.api_process")

STAT_NAMES = (
    "spool_bytes",
    "upload_lag_s",
    "uploaded_total",
    "upload_failures_total",
    "spool_dropped_total",
    "worker_restarts_total",
)
_FMT = f"<{len(STAT_NAMES)}d"
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # up this long: the next death restarts after RESTART_MIN_S again


class SharedStats:
    """Figures the recording process publishes and the API process reads (doubles in a memfd)."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("vigil-stats", 0)
            os.ftruncate(fd, struct.calcsize(_FMT))
        self.fd = fd
        self._map = mmap.mmap(fd, struct.calcsize(_FMT))

    def publish(self, stats: dict[str, float]) -> None:
        struct.pack_into(_FMT, self._map, 0, *(float(stats.get(n, 0.0)) for n in STAT_NAMES))

    def read(self) -> dict[str, float]:
        return dict(zip(STAT_NAMES, struct.unpack_from(_FMT, self._map, 0)))


class ApiProcess:
    """The parent's handle: start, watch (restart on exit), stop."""

    def __init__(self, settings: Settings, stats: Callable[[], dict[str, float]] | None = None) -> None:
        self.settings = settings
        self.stats = stats
        self.shared = SharedStats()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.api_process", str(self.shared.fd)],
            stdin=subprocess.PIPE,
            pass_fds=(self.shared.fd,),
            env=env,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(self.settings.model_dump_json().encode())
            proc.stdin.close()
        except OSError:  # it died at once: the watch loop sees it
            pass
        log.info("API process %d serving on %s:%d", proc.pid, self.settings.api.host, self.settings.api.port)
        return proc

    def start(self) -> "ApiProcess":
        self._publish()
        self.proc = self._spawn()
        self._thread = threading.Thread(target=self._watch, name="api-watch", daemon=True)
        self._thread.start()
        return self

    def _publish(self) -> None:
        if self.stats is not None:
            try:
                self.shared.publish(self.stats())
            except Exception:  # figures are best effort; never let them stop the watch
                log.exception("publishing figures for the API failed")

    def _watch(self) -> None:
        delay = RESTART_MIN_S
        started = time.monotonic()
        while not self._stop.wait(0.5):
            self._publish()
            assert self.proc is not None
            code = self.proc.poll()
            if code is None:
                continue
            up = time.monotonic() - started
            if up > STABLE_AFTER_S:
                delay = RESTART_MIN_S
            log.error("API process %d exited with %s after %.0f s; restarting in %.0f s", self.proc.pid, code, up, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)
            self.restarts += 1
            self.proc = self._spawn()
            started = time.monotonic()

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (uvicorn stops taking requests and ends), then SIGKILL after `timeout_s`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("API process %d did not stop within %.0f s: killed", proc.pid, timeout_s)
            proc.kill()
            proc.wait(5.0)


def build_app(
    settings: Settings, catalog: Any, store: Any, spool: Any, stats: Callable[[], dict[str, float]] | None
) -> Any:
    """The app `vigil run` serves, around this process's catalog, store and spool."""
    from api.app import create_app
    from api.dependencies import ApiContext
    from core.clock import SYSTEM_CLOCK

    return create_app(
        ApiContext(settings=settings, catalog=catalog, store=store, spool=spool, clock=SYSTEM_CLOCK, stats=stats)
    )


def _child(stats_fd: int) -> int:
    import uvicorn

    from api.serving import server_config
    from core.logs import setup_logging
    from storage.catalog import Catalog
    from storage.object_store import open_store
    from storage.sealing import load_sealer
    from storage.spool import Spool

    setup_logging(os.environ.get("VIGIL_LOG_LEVEL", "INFO"))
    settings = Settings.model_validate_json(sys.stdin.buffer.read())
    shared = SharedStats(stats_fd)
    catalog = Catalog(settings.catalog, create=False, sealer=load_sealer(settings, create=False))
    app = build_app(settings, catalog, open_store(settings.storage), Spool(settings.spool.path), shared.read)
    server = uvicorn.Server(server_config(app, settings.api))
    threading.Thread(target=_follow_parent, args=(server,), name="parent-watch", daemon=True).start()
    server.run()
    return 0 if server.started else 1


def _follow_parent(server: object, every_s: float = 0.5) -> None:
    """A recording process that died without stopping us (SIGKILL, a crash): stop serving, so no
    orphan keeps the port, answering for recorders that are gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(every_s)
    log.error("the recording process %d is gone: the API stops", parent)
    server.should_exit = True  # type: ignore[attr-defined]
    time.sleep(5.0)
    os._exit(1)  # uvicorn did not finish its graceful stop in time


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when this one stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(_child(int(sys.argv[1])))
