"""Times in query parameters: ISO 8601 with a zone, or epoch seconds → integer µs (UTC).

A time without a zone is refused: evidence must not depend on the server's time zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from core.clock import iso_utc

__all__ = ["iso_utc", "parse_time_us"]

_EPOCH = re.compile(r"^\d{1,12}(\.\d{1,6})?$")
_SPACED_OFFSET = re.compile(r"^(.*\d) (\d\d:?\d\d)$")  # "+02:00" arrives as " 02:00" when not URL-encoded
MAX_US = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z


def parse_time_us(text: str) -> int:
    """Raises ValueError with a message for the person who typed it."""
    s = text.strip()
    if not s:
        raise ValueError("empty time")
    if _EPOCH.match(s):
        try:
            us = int(Decimal(s) * 1_000_000)
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise ValueError(f"not a time: {text!r}") from None
        if us > MAX_US:
            raise ValueError(f"time {text!r} is out of range")
        return us
    m = _SPACED_OFFSET.match(s)
    if m and "T" in s:
        s = f"{m.group(1)}+{m.group(2)}"
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601 with a zone, e.g. 2024-05-01T10:00:00Z, or epoch seconds)"
        ) from None
    if t.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone: add Z or an offset such as +02:00")
    t = t.astimezone(UTC)
    us = int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond
    if not 0 <= us <= MAX_US:
        raise ValueError(f"time {text!r} is out of range")
    return us
