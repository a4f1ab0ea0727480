"""Signed URLs: how HLS players that cannot send a Bearer header are authorized.

A signature grants exactly one URL (path + query) until `exp`, on behalf of key `kid`; the server
signs only after checking the caller's role for what the URL shows. The secret is shared by all
API nodes through the catalog (`storage.server_secrets.server_secret`). See docs/design/api.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

__all__ = ["MAX_TTL_S", "SIGNATURE_PARAMS", "UrlSigner"]

SIGNATURE_PARAMS = ("kid", "exp", "sig")
# No signed URL lives longer than this (plus the minute its expiry is rounded up to): one made
# with a leaked secret, or kept from a browser's history, is not good for a year.
MAX_TTL_S = 86_400


def _canonical(params: Iterable[tuple[str, str]]) -> str:
    return urlencode(sorted((k, v) for k, v in params if k not in SIGNATURE_PARAMS))


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sig(self, kid: str, exp: int, path: str, canonical: str) -> str:
        msg = f"v1\n{kid}\n{exp}\n{path}\n{canonical}".encode()
        return base64.urlsafe_b64encode(hmac.new(self._secret, msg, hashlib.sha256).digest()).rstrip(b"=").decode()

    def sign(self, path: str, params: Mapping[str, str], kid: str, exp: int) -> str:
        """`path?params&kid=…&exp=…&sig=…` (path relative to the app's root)."""
        items = [(k, str(v)) for k, v in params.items()]
        sig = self._sig(kid, exp, path, _canonical(items))
        query = urlencode(sorted(items) + [("kid", kid), ("exp", str(exp)), ("sig", sig)])
        return f"{path}?{query}"

    def verify(self, path: str, query: Iterable[tuple[str, str]], now_s: float) -> str | None:
        """The signing key id when the URL's signature is valid and unexpired, else None."""
        items = list(query)
        got = {k: v for k, v in items if k in SIGNATURE_PARAMS}
        if set(got) != set(SIGNATURE_PARAMS) or sum(1 for k, _ in items if k in SIGNATURE_PARAMS) != 3:
            return None
        try:
            exp = int(got["exp"])
        except ValueError:
            return None
        if exp < now_s or exp > now_s + MAX_TTL_S + 60:
            return None
        want = self._sig(got["kid"], exp, path, _canonical(items))
        return got["kid"] if hmac.compare_digest(want, got["sig"]) else None
