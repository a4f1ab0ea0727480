"""The console is read by people: state changes and problems, not library chatter."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from core.logs import LogThrottle, setup_logging
from storage.catalog import Catalog


def test_a_fresh_catalog_says_nothing_on_the_console(tmp_path: Path) -> None:
    """Creating the catalog runs every Alembic migration: a dozen INFO lines before, none now."""
    out = io.StringIO()
    setup_logging("INFO", out)
    try:
        Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
        logging.getLogger("vigil.health").info("cam-1: online → frozen (picture unchanged for 10.0 s)")
        logging.getLogger("alembic.runtime.migration").warning("a migration problem")
    finally:
        setup_logging("INFO")
    lines = out.getvalue().splitlines()
    assert [ln.split(": ", 1)[1] for ln in lines] == [
        "cam-1: online → frozen (picture unchanged for 10.0 s)",
        "a migration problem",
    ], lines


def test_a_recurring_problem_is_one_line_then_one_per_interval_with_a_count() -> None:
    t = LogThrottle(300.0)
    said = [(now, t(now)) for now in range(0, 700, 20)]  # a stream that ends every 20 s, for 11+ min
    assert [(now, n) for now, n in said if n is not None] == [(0, 0), (300, 14), (600, 14)]
