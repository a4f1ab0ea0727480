"""Credential redaction, the one rule: what logs, errors and responses may show of a URL or a text.

Camera URLs carry credentials (user info, secret-looking query values); every place that shows a URL
or an error quoting one goes through here, so one rule can be tightened in one place.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["redact_url", "safe_url", "scrub_text"]

# user info up to the last '@' of the URL (greedy: over-masking is the safe error)
_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s'\"?#]*@")
_SECRET_QUERY = re.compile(r"(?P<name>[?&][^=&\s]*(?:pass|pwd|secret|token|key|auth|sig|credential)[^=&\s]*=)[^&\s'\"#]*", re.I)


def scrub_text(text: str) -> str:
    """Mask credentials in every URL of a message: user info, and secret-looking query values."""
    return _SECRET_QUERY.sub(r"\g<name>***", _CREDS.sub(r"\g<scheme>***@", text))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^?#]*@")
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential", re.IGNORECASE)


def redact_url(url: str) -> str:
    """What logs and responses may show of a camera URL: no user info, no secret query values.

    `rtsp://user:pass@host/x?password=y` → `rtsp://***@host/x?password=***`. User info is cut up
    to the last '@' before the query, so a password with an unescaped '/' or '@' cannot leak
    through what a parser takes for the path (over-masking a host is the safe error).
    """
    red = _USERINFO.sub(r"\1***@", url)
    try:
        parts = urlsplit(red)
    except ValueError:
        return "<unparseable url>"
    if not parts.query:
        return red
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(masked, safe="*"), parts.fragment))


def safe_url(url: str | None) -> str | None:
    """`redact_url` for an optional URL (responses show `None` as it is)."""
    return None if url is None else redact_url(url)
