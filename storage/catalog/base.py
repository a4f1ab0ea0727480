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


class CatalogBase:
    """The engine and its transactions; the row families (cameras, segments, statuses) build on it."""

    def __init__(self, url: str, *, create: bool = True, pool: tuple[int, int] = POOL_MAIN) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
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
