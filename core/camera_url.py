"""Camera URLs: which may be recorded, and their credentials kept apart from them.

One validator (`check_camera_url`) for the config file and the API: a camera URL is `rtsp://` or
`rtsps://` with a host, unless the operator turned more schemes on (`security.camera_url_schemes`).
`file://`, `concat:`, `tcp://`, a bare local path or an internal `http://` address would let
whoever can add a camera read local files or probe the internal network through FFmpeg (SSRF);
`ffmpeg_protocols` is the matching protocol whitelist handed to FFmpeg when the URL is opened, so
a playlist or an RTSP redirect cannot reach further than the scheme allowed.

Credentials are split out of a URL before it is stored (as Moonfire NVR does): user info goes to
`username`/`password`; a secret-looking named value in the path, query or fragment (the same rule
as core/redact.py: `…/user=admin&password=…&channel=1`, `;password=…`, `#pass=…`) goes to
`password` and leaves the `{password}` placeholder, filled in again only when the camera is opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from core.redact import SECRET_VALUE, USERINFO

__all__ = [
    "DEFAULT_SCHEMES",
    "KNOWN_SCHEMES",
    "PLACEHOLDER",
    "SplitUrl",
    "check_camera_url",
    "check_camera_urls",
    "ffmpeg_protocols",
    "join_credentials",
    "split_credentials",
    "url_scheme",
]

DEFAULT_SCHEMES = ("rtsp", "rtsps")
PLACEHOLDER = "{password}"
MAX_URL = 2048
# FFmpeg protocols each scheme needs underneath (RTSP opens RTP over UDP or TCP, TLS for rtsps)
_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "rtsp": ("rtsp", "rtp", "udp", "tcp"),
    "rtsps": ("rtsps", "rtsp", "rtp", "srtp", "udp", "tcp", "tls"),
    "http": ("http", "tcp", "hls", "crypto"),
    "https": ("https", "http", "tcp", "tls", "hls", "crypto"),
    "rtmp": ("rtmp", "tcp"),
    "srt": ("srt", "udp"),
    "udp": ("udp", "rtp"),
    "file": ("file",),
}
KNOWN_SCHEMES = tuple(_PROTOCOLS)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def url_scheme(url: str) -> str:
    """The URL's scheme in lower case; a bare path is `file`; FFmpeg's `concat:`-style prefixes
    count as their own scheme."""
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else "file"


def check_camera_url(url: str, allowed: tuple[str, ...] | list[str] = DEFAULT_SCHEMES) -> str:
    """The URL if a camera may use it, else ValueError with a message for the person who typed it
    (never quoting the URL's credentials)."""
    if len(url) > MAX_URL:
        raise ValueError(f"URL longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("a URL may not hold spaces or control characters")
    scheme = url_scheme(url)
    allowed = tuple(s.lower() for s in allowed)
    if scheme not in allowed:
        raise ValueError(
            f"URL scheme {scheme!r} is not allowed (allowed: {', '.join(allowed)}; "
            "an operator may allow more in security.camera_url_schemes)"
        )
    if scheme != "file" and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s]+", url):
        raise ValueError(f"expected a URL such as {scheme}://host/path")
    return url


def check_camera_urls(urls: dict[str, str | None], allowed: tuple[str, ...] | list[str]) -> None:
    """`check_camera_url` on a camera's named URLs (url, health_url); the error names the field."""
    for name, value in urls.items():
        if value is not None:
            try:
                check_camera_url(value, allowed)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None


def ffmpeg_protocols(url: str) -> str:
    """FFmpeg's `protocol_whitelist` for opening this URL: what its scheme needs, nothing more."""
    return ",".join(_PROTOCOLS.get(url_scheme(url), (url_scheme(url),)))


@dataclass(frozen=True, slots=True)
class SplitUrl:
    url: str  # no credentials; `{password}` where a named value held one
    username: str | None
    password: str | None


def split_credentials(url: str, username: str | None = None, password: str | None = None) -> SplitUrl:
    """Move the credentials out of `url`; a `username`/`password` given apart wins over the URL's.

    ValueError when the URL itself holds two different secrets.
    """
    user: str | None = None
    secrets: list[str] = []
    m = USERINFO.match(url)
    if m:
        u, sep, p = m.group("info").partition(":")
        user = unquote(u) or None
        if sep:
            secrets.append(unquote(p))
        url = m.group("scheme") + url[m.end() :]

    def _take(mv: re.Match[str]) -> str:
        value = mv.group("value")
        if not value or value == PLACEHOLDER:
            return mv.group(0)
        secrets.append(value)
        return mv.group("name") + PLACEHOLDER

    url = SECRET_VALUE.sub(_take, url)
    if len(set(secrets)) > 1:
        raise ValueError("the URL holds two different secrets; give the password in the password field")
    return SplitUrl(
        url=url,
        username=username if username is not None else user,
        password=password if password is not None else (secrets[0] if secrets else None),
    )


def join_credentials(url: str, username: str | None, password: str | None) -> str:
    """The URL to open: the stored URL with its credentials put back."""
    out = url.replace(PLACEHOLDER, password or "")
    if not username and not (password and PLACEHOLDER not in url):
        return out
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)", out)
    if not m:
        return out  # a local path has no place for credentials
    info = quote(username or "", safe="") + (":" + quote(password, safe="") if password else "")
    return m.group(1) + info + "@" + out[m.end() :]
