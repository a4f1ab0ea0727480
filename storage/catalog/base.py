"""The catalog's connection: engine set-up per backend, schema upgrade, transactions."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["CatalogBase", "POOL_MAIN", "POOL_STATUS_CHILD", "POOL_WORKER"]

# The connection budget (docs/design/catalog.md): (pool size, overflow) per process on PostgreSQL.
# A node is one main process (API threads, uploader, retention, leases), its worker processes and
# one status child: 8 + 2 × workers + 1 connections at most — 17 with 4 workers, ~510 for 30 nodes.
POOL_MAIN = (4, 4)
POOL_WORKER = (2, 0)  # the status writer's flush and a camera thread's lease or snapshot at once
POOL_STATUS_CHILD = (1, 0)  # one request at a time


def _private_file(path: Any) -> None:
    """The database file exists, 0600, before SQLite opens it (its -wal and -shm files take
    their mode from it): the catalog is nobody else's to read."""
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if os.stat(path).st_uid == os.getuid():
        os.chmod(path, 0o600)


class CatalogBase:
    """The engine and its transactions; the row families (cameras, segments, statuses) build on it."""

    def __init__(self, url: str, *, create: bool = True, pool: tuple[int, int] = POOL_MAIN, sealer: Any = None) -> None:
        """`sealer` (storage/sealing.py) seals camera passwords and server secrets; without one,
        the `VIGIL_SECURITY__KEY` environment variable's key, else for a SQLite file the key file
        beside it (`secret.key`, `vigil run`'s default place; made on first use when `create`), else none
        (storing a secret then fails: nothing secret is ever written in clear)."""
        from pathlib import Path

        from storage.sealing import Sealer, key_file_sealer

        self.url = url
        self.sealer: Sealer | None = sealer if sealer is not None else Sealer.from_env()
        db_file = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
        key_file = Path(db_file).parent / "secret.key" if db_file and db_file != ":memory:" else None
        if self.sealer is None and key_file is not None and (create or key_file.exists()):
            self.sealer = key_file_sealer(key_file)  # made only by a process that may make the schema
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _private_file(Path(path))
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"], kwargs["max_overflow"] = pool
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if self.is_sqlite:

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        self._lock = threading.Lock()
        if create:
            self.create_schema()

    def create_schema(self) -> None:
        """Bring the database to the newest schema revision (Alembic; see storage/migrate.py)."""
        from storage.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _begin(self) -> Any:
        return self.engine.begin()
