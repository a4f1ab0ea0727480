"""HTTP byte ranges (RFC 9110 §14): one range per request, which is all HLS players send."""

from __future__ import annotations

import re

__all__ = ["Unsatisfiable", "framed", "parse_range", "range_or_416"]

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


def range_or_416(header: str | None, size: int) -> tuple[int, int] | None:
    """`parse_range`, with an unsatisfiable range as the 416 response RFC 9110 asks for."""
    from fastapi import HTTPException

    try:
        return parse_range(header, size)
    except Unsatisfiable:
        raise HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{size}"}) from None


def framed(rng: tuple[int, int] | None, size: int, headers: dict[str, str]) -> tuple[int, int, int]:
    """(status, first byte, length) of the answer to `rng` (`parse_range`'s result); sets
    Content-Range for a 206, and Content-Length, in `headers`."""
    status, first, length = 200, 0, size
    if rng is not None:
        first, last = rng
        length, status = last - first + 1, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)
    return status, first, length
