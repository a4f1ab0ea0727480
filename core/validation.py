"""The rules every setting is read by (`StrictModel`), and pydantic's validation errors as one line
for a person: `key.path: problem; other.key: problem`.

The config file's refusal, the API's 422 and a worker's refusal of a camera's stored settings all
word a bad value the same way, and none of them quotes the value (it may be a URL with a password).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel", "describe_errors"]


class StrictModel(BaseModel):
    """Base of every settings block: an unknown key is an error (a typo never passes as a default),
    and so is an infinite or NaN number (`inf` passes `gt=0`: a threshold of Infinity, valid in
    Python's JSON, would switch a check off without a word)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
