"""pydantic's validation errors as one line for a person: `key.path: problem; other.key: problem`.

The config file's refusal, the API's 422 and a worker's refusal of a camera's stored settings all
word a bad value the same way, and none of them quotes the value (it may be a URL with a password).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["describe_errors"]


def describe_errors(errors: Iterable[Mapping[str, Any]], *, skip: tuple[str, ...] = ()) -> str:
    """`errors` as from `ValidationError.errors()`; location parts in `skip` (e.g. "body") left out."""
    lines = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in skip) or "(top level)"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{loc}: {msg}")
    return "; ".join(lines)
