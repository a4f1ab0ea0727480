"""Report rows (dataclasses) as CSV or JSON: one writer for every report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

__all__ = ["rows_to_csv", "rows_to_json"]


def rows_to_csv(rows: Sequence[Any], row_type: type) -> str:
    """One header line (the dataclass's field names) and one line per row; empty cells for None."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [f.name for f in fields(row_type)]
    w.writerow(names)
    for r in rows:
        w.writerow(["" if getattr(r, n) is None else getattr(r, n) for n in names])
    return buf.getvalue()


def rows_to_json(rows: Sequence[Any]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)
