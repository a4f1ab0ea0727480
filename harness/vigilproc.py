"""`vigil run` as a real subprocess for end-to-end tests, plus small waiting helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from storage.catalog import Catalog, Segment
from harness.servers import free_port

__all__ = ["VigilProcess", "wait_until", "runs_of"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_until(pred: Callable[[], T], timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    """Poll `pred` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def runs_of(segments: list[Segment]) -> dict[str, list[Segment]]:
    out: dict[str, list[Segment]] = {}
    for s in sorted(segments, key=lambda s: s.start_us):
        out.setdefault(s.run_id, []).append(s)
    return out


class VigilProcess:
    """Writes a config file, starts `vigil run`, and lets a test poke at it."""

    def __init__(
        self,
        workdir: Path,
        cameras: list[dict[str, Any]],
        *,
        s3: Any = None,
        log_level: str = "INFO",
        repo: Path = REPO,
        **overrides: Any,
    ) -> None:
        """`log_level="DEBUG"` for a test that reads what vigil's console leaves out (run starts, each
        reconnect's delay). `repo`: the checkout whose vigil runs (a benchmark's "before", a worktree
        of an older commit)."""
        self.workdir = workdir
        self.log_level = log_level
        self.repo = repo
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        storage: dict[str, Any] = {"backend": "local", "path": str(workdir / "objects")}
        if s3 is not None:
            storage = {
                "backend": "s3",
                "s3": {
                    "endpoint": s3.endpoint,
                    "access_key": s3.access_key,
                    "secret_key": s3.secret_key,
                    "bucket": s3.bucket,
                    "secure": False,
                },
            }
        self.config: dict[str, Any] = {
            "storage": storage,
            "catalog": f"sqlite:///{workdir / 'catalog.db'}",
            "spool": {"path": str(workdir / "spool"), "max_bytes": "1GB"},
            "recording": {"segment_seconds": 10},
            "workers": {"processes": 2, "backoff_initial_s": 0.5, "backoff_max_s": 2.0},
            "api": {"host": "127.0.0.1", "port": self.port},
            "data_dir": str(workdir),
            "cameras": cameras,
        }
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(self.config.get(k), dict):
                self.config[k].update(v)
            else:
                self.config[k] = v
        self.config_path = workdir / "vigil.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.log_path = workdir / "vigil.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._catalog: Catalog | None = None

    def start(self, timeout: float = 60.0) -> "VigilProcess":
        env = dict(os.environ, PYTHONUNBUFFERED="1", VIGIL_LOG_LEVEL=self.log_level)
        if str(self.config["catalog"]).startswith("sqlite"):
            env.pop("VIGIL_SECURITY__KEY", None)  # the node's own key file (<data_dir>/secret.key)
        # else nodes share one catalog, so one key: this process's (docs/design/security.md)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "run", "--config", str(self.config_path)],
            cwd=self.repo,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_until(self._healthy, timeout, what="vigil run to answer /health")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"vigil run exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.config["catalog"], create=False)
        return self._catalog

    def _children(self, marker: bytes) -> list[int]:
        """PIDs of the main process's children whose command line holds `marker`."""
        assert self.proc is not None
        pids = []
        for child in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if marker in cmd:
                    pids.append(int(pid))
        return sorted(pids)

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (children started by multiprocessing's spawn)."""
        return self._children(b"spawn_main")

    def api_pid(self) -> int | None:
        """PID of the API process (`python -m vigil.api_process`), a child of the main process."""
        found = self._children(b"vigil.api_process")
        return found[0] if found else None

    def kill(self) -> None:
        """SIGKILL the main process, as a crashed node (its workers notice and stop)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def pause(self) -> list[int]:
        """SIGSTOP the whole node (main and workers), as a VM or network pause."""
        assert self.proc is not None
        pids = [self.proc.pid, *self.worker_pids()]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def resume(self, pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM; returns seconds until it exited."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"vigil run did not exit within {timeout} s of SIGTERM")
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def __enter__(self) -> "VigilProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
