"""The camera-id rule, in one place: the config file, the API and the object keys all use it.

An id is part of every object key (`{camera}/YYYY/…`) and of URLs, so it is kept to what needs no
escaping anywhere: 1–64 of a-z, 0-9, '-' and '_', starting with a letter or digit.
"""

from __future__ import annotations

import re

__all__ = ["CAMERA_ID", "CAMERA_ID_PATTERN", "CAMERA_ID_RULE", "check_camera_id"]

CAMERA_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"  # without anchors, for patterns that embed it
CAMERA_ID = re.compile(rf"^{CAMERA_ID_PATTERN}\Z")  # \Z: no trailing newline slips through
CAMERA_ID_RULE = "camera id must be 1-64 of a-z, 0-9, '-' or '_', starting with a letter or digit"


def check_camera_id(value: str) -> str:
    """`value` if it is a valid camera id; ValueError with the rule otherwise (a pydantic validator)."""
    if not CAMERA_ID.match(value):
        raise ValueError(CAMERA_ID_RULE)
    return value
