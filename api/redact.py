"""Camera URLs as responses may show them (the rule itself lives in `storage.catalog.redact_url`)."""

from __future__ import annotations

from storage.catalog import redact_url

__all__ = ["safe_url"]


def safe_url(url: str | None) -> str | None:
    return None if url is None else redact_url(url)
