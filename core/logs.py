"""Logging set-up with a last line of defence: credentials are scrubbed from every record."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from core.redact import scrub_text

__all__ = ["QUIET_LOGGERS", "LogThrottle", "setup_logging", "ScrubFilter"]

# Libraries whose INFO lines are chatter for the people reading vigil's console (Alembic's dozen lines
# per start, uvicorn's start-up banner): their warnings and errors still show.
QUIET_LOGGERS = ("uvicorn.access", "uvicorn.error", "urllib3", "libav", "alembic", "sqlalchemy", "botocore", "httpx",
                 "websockets", "asyncio", "multipart")

class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub_text(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


def setup_logging(level: str = "INFO", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


@dataclass(slots=True)
class LogThrottle:
    """One console line for a problem that keeps recurring (a camera whose stream ends every 20 s):
    its first occurrence, then at most one per `interval_s`, saying how many were left out.

    `__call__(now)` answers None (say nothing) or how many occurrences were left out since the last line.
    Not thread-safe: one per camera loop.
    """

    interval_s: float = 300.0
    _last: float | None = None
    _left_out: int = 0

    def __call__(self, now: float) -> int | None:
        if self._last is not None and now - self._last < self.interval_s:
            self._left_out += 1
            return None
        n, self._left_out, self._last = self._left_out, 0, now
        return n
