"""Credential redaction, the one rule: what logs, errors and responses may show of a URL or a text.

Camera URLs carry credentials in several places, and recorders differ in which they use:
- user info: `rtsp://user:pass@host/…`;
- named values anywhere after the host, in the query, the path or the fragment:
  `rtsp://h/user=admin&password=…&channel=1&stream=0.sdp`, `rtsp://h/live;password=…`,
  `rtsp://h/x?token=…`, `rtsp://h/x#pass=…` (a name holding pass, pwd, psw, secret, token, key,
  auth, sig or credential, followed by `=` or `%3D`).
Every place that shows a URL or an error quoting one goes through here, whatever its form, so the
rule is tightened in one place; `core/camera_url.py` uses the same patterns to split credentials
out of a URL before it is stored. Over-masking is the safe error.
"""

from __future__ import annotations

import re

__all__ = ["SECRET_NAME", "SECRET_VALUE", "USERINFO", "redact_url", "safe_url", "scrub_text"]

MASK = "***"
_SECRET_WORDS = r"pass|pwd|psw|secret|token|key|auth|sig|credential"
# user info up to the last '@' before a space or quote (greedy: a password holding an unescaped
# '/', '@', '?' or '#' still cannot leak through what a parser would take for the path)
USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>[^\s'\"<>]*)@")
# a secret-looking name and its value, wherever it stands: query, path, ';' parameters, fragment
SECRET_NAME = re.compile(
    rf"(?P<name>(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.-]*(?:=|%3[Dd]))", re.IGNORECASE
)
SECRET_VALUE = re.compile(SECRET_NAME.pattern + r"(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE)


def scrub_text(text: str) -> str:
    """Mask credentials in every URL of a message: user info, and secret-looking named values."""
    text = USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return SECRET_VALUE.sub(lambda m: m.group("name") + (MASK if m.group("value") else ""), text)


def redact_url(url: str) -> str:
    """What logs and responses may show of a camera URL: `rtsp://user:pass@h/x?password=y` →
    `rtsp://***@h/x?password=***` (the same rule as `scrub_text`)."""
    return scrub_text(url)


def safe_url(url: str | None) -> str | None:
    """`redact_url` for an optional URL (responses show `None` as it is)."""
    return None if url is None else redact_url(url)
