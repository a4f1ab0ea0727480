"""HTTP byte ranges (RFC 9110 §14): one range per request, which is all HLS players send."""

from __future__ import annotations

import re

__all__ = ["Unsatisfiable", "parse_range"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last inclusive) for a satisfiable single range; None to send the whole object
    (no header, several ranges, or syntax we ignore as RFC 9110 allows); raises Unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header)
    if not m:
        return None
    a, b = m.groups()
    if a == "" and b == "":
        return None
    if a == "":  # suffix: the last b bytes
        n = int(b)
        if n == 0:
            raise Unsatisfiable()
        return max(0, size - n), size - 1
    first = int(a)
    last = int(b) if b else size - 1
    if b and last < first:
        return None  # invalid range: ignore it
    if first >= size:
        raise Unsatisfiable()
    return first, min(last, size - 1)
