"""A key-guessing client against a valid poller: does the failed-key limit keep status polls fast?

The API is served by uvicorn as `vigil run` serves it (api/serving.py) in a child process; one
client process sends random keys as fast as it can (one connection), while this process polls
`/api/status` with a valid key once every 20 ms and records each poll's latency. Run once with
the limit (the default) and once without (`--no-limit`):

    .venv/bin/python bench/auth_flood.py [--seconds 10] [--no-limit]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _serve(workdir: str, port: int, limit: bool, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import uvicorn

    from api.app import create_app
    from api.dependencies import ApiContext
    from api.serving import server_config
    from core.settings import ApiConfig, Settings
    from storage.catalog import Catalog
    from storage.object_store import LocalStore

    settings = Settings(data_dir=Path(workdir), api=ApiConfig(port=port))
    catalog = Catalog(f"sqlite:///{workdir}/catalog.db")
    app = create_app(ApiContext(settings=settings, catalog=catalog, store=LocalStore(Path(workdir) / "o")))
    if not limit:
        app.state.services.throttle = None
    server = uvicorn.Server(server_config(app, settings.api, log_level="warning", lifespan="on"))
    ready.set()  # type: ignore[attr-defined]
    server.run()


def _guess(port: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import httpx

    codes: dict[int, int] = {}
    end = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        while time.monotonic() < end:
            key = f"vgl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            r = c.get("/api/status", headers={"Authorization": f"Bearer {key}"})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
    out.put(codes)


def main() -> None:
    import httpx

    from storage.api_keys import create_key
    from storage.catalog import Catalog

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-limit", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vigil-flood-")
    key = create_key(Catalog(f"sqlite:///{work}/catalog.db"), "viewer", "poller")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(work, port, not args.no_limit, ready), daemon=True)
    server.start()
    ready.wait(60)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        h = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if c.get("/api/status", headers=h).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

        def polls(seconds: float) -> list[float]:
            lat = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                t0 = time.perf_counter()
                assert c.get("/api/status", headers=h).status_code == 200
                lat.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.02)
            return lat

        quiet = polls(min(5.0, args.seconds))
        out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        guesser = ctx.Process(target=_guess, args=(port, args.seconds, out))
        guesser.start()
        loud = polls(args.seconds)
        codes = out.get(timeout=args.seconds + 30)
        guesser.join()
    server.terminate()
    rate = sum(codes.values()) / args.seconds
    print(
        f"limit {'off' if args.no_limit else 'on'}: valid poll p50 {statistics.median(quiet):.1f} ms alone, "
        f"{statistics.median(loud):.1f} ms (p90 {sorted(loud)[int(len(loud) * 0.9)]:.1f}) under "
        f"{rate:.0f} guesses/s; guess answers {codes}"
    )


if __name__ == "__main__":
    main()
