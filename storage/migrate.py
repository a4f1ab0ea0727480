"""Schema migrations (Alembic) for the catalog, on SQLite and PostgreSQL alike.

`upgrade(engine)` is what `Catalog` runs at start: a no-op costing one query when the database is
already at head; on PostgreSQL an advisory lock keeps nodes that start together from racing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = ["HEAD", "current_revision", "head", "upgrade"]

_DIR = Path(__file__).resolve().parent / "migrations"
HEAD = "head"
_LOCK_KEY = 0x76696769  # "vigi"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_DIR))
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    h = ScriptDirectory.from_config(_config()).get_current_head()
    assert h is not None
    return h


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = HEAD) -> None:
    target = head() if revision == HEAD else revision
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        if MigrationContext.configure(conn).get_current_revision() == target:
            return
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
