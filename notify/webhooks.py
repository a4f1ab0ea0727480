"""Webhook deliveries: a configured webhook, its signature, one POST (which changes it wants and
the JSON body: storage/webhook_rows.py, shared with the API).

The body is built once, when the change enters the outbox, and stored as text: every retry sends
the very same bytes (same `id`), so a receiver can drop duplicates and check the signature
`X-Vigil-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import httpx

from core.redact import redact_url
from core.settings import WebhookConfig
from storage.webhook_rows import wants

__all__ = ["Attempt", "Hook", "SIGNATURE_HEADER", "sign"]

SIGNATURE_HEADER = "X-Vigil-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST's outcome: `ok`, or an error that is the receiver's (`retry_all`: it is down or
    overloaded, so wait before sending anything) or the row's (a 4xx: this body was refused)."""

    ok: bool
    retry_all: bool = False
    error: str = ""


class Hook:
    """One configured webhook: its stable name, its filter, and the sending."""

    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg
        self.name = cfg.key
        self.safe_url = redact_url(cfg.url)

    def wants(self, states: tuple[str | None, ...], tags: dict[str, str]) -> bool:
        """The filter (storage/webhook_rows.py: the API writes ticket rows with it too)."""
        return wants(self.cfg, states, tags)

    def send(self, client: httpx.Client, body: str, delivery_id: str) -> Attempt:
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.cfg.secret, raw),
            "X-Vigil-Delivery": delivery_id,
            "User-Agent": "vigil-notifier",
        }
        try:
            r = client.post(self.cfg.url, content=raw, headers=headers, timeout=self.cfg.timeout_s)
        except httpx.HTTPError as e:
            return Attempt(False, True, f"{type(e).__name__}: cannot reach {self.safe_url}")
        if 200 <= r.status_code < 300:
            return Attempt(True)
        retry_all = r.status_code >= 500 or r.status_code in (408, 425, 429)
        return Attempt(False, retry_all, f"HTTP {r.status_code} from {self.safe_url}")
