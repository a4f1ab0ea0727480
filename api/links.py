"""URLs the API hands out: signed when auth is on, so players without headers can follow them."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from api.dependencies import Principal, Services

__all__ = ["media_path", "signed_url"]


def media_path(object_key: str) -> str:
    return f"/api/media/{object_key}"


def signed_url(
    svc: Services, request: Request, who: Principal, path: str, params: Mapping[str, str], ttl_s: float
) -> tuple[str, int]:
    """(URL relative to the origin, expiry µs). Unsigned when auth is off."""
    # Expiry rounded up to the minute: a live playlist reloaded every second keeps the same URLs.
    exp = -(-int(svc.ctx.clock.now() + ttl_s) // 60) * 60
    root = request.scope.get("root_path", "") or ""
    if who.key is None or not svc.ctx.settings.api.auth:
        from urllib.parse import urlencode

        query = urlencode(sorted(params.items()))
        return (f"{root}{path}?{query}" if query else f"{root}{path}"), exp * 1_000_000
    return f"{root}{svc.signer.sign(path, params, who.key.id, exp)}", exp * 1_000_000
