"""What a webhook is sent, decided where every writer of the outbox can import it: which webhook
wants a change (its `states` and `tags` filters), the body's JSON, and the rows of a ticket change.

Why in storage: the notifier (notify/, in `vigil run`) writes state changes and the tickets it opens
and closes; the API (its own process, which never imports notify) writes the changes people make —
an acknowledgement, a hand resolution, a camera removed — in the same transaction as the change
itself (storage/tickets.py), so a crash loses none. Both must build the very same bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from core.settings import WebhookConfig
from storage.outbox import OutboxRow

__all__ = ["CamInfo", "body", "rfc3339", "ticket_rows", "wants"]

CamInfo = tuple[str, Mapping[str, str]]  # a camera's (name, tags)


def rfc3339(at_us: int) -> str:
    """µs since the epoch → `2026-12-06T13:51:05.123456Z`."""
    return datetime.fromtimestamp(at_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body(payload: dict[str, Any]) -> str:
    """Compact, keys sorted: built once and stored, so every retry sends the same bytes."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def wants(cfg: WebhookConfig, states: Iterable[str | None], tags: Mapping[str, str]) -> bool:
    """A change from or to one of its states (a recovery from a watched fault is news too),
    on a camera whose tags match every one of its tag filters."""
    if not any(s in cfg.states for s in states if s):
        return False
    for key, want in cfg.tags.items():
        have = tags.get(key)
        if have is None or (have not in want if isinstance(want, list) else have != want):
            return False
    return True


def ticket_rows(
    hooks: Sequence[WebhookConfig],
    kind: str,
    *,
    ticket_id: int,
    fault: str,
    element: tuple[str | None, str | None],
    cameras: Mapping[str, CamInfo],
    at_us: int,
    reason: str,
    from_state: str | None,
    to_state: str | None,
    extra: Mapping[str, Any] | None = None,
) -> list[OutboxRow]:
    """One row per webhook that wants a ticket change (`ticket_opened`, `ticket_closed`,
    `ticket_acked`, `ticket_resolved`): the ticket's fault is in its `states` and one of the
    ticket's cameras matches its tag filters. `cameras`: every camera of the ticket (a camera
    no longer in the catalog: name "" and no tags). Ordered with the ticket's first camera."""
    ids = sorted(cameras)
    if not ids:
        return []
    wanting = [h for h in hooks if any(wants(h, (fault,), cameras[i][1]) for i in ids)]
    if not wanting:
        return []
    name, tags = cameras[ids[0]]
    delivery_id = f"ticket-{ticket_id}-{kind.removeprefix('ticket_')}"
    tag, value = element
    text = body(
        {
            "id": delivery_id,
            "type": kind,
            "camera_id": ids[0],
            "camera_name": name or ids[0],
            "tags": dict(tags),
            "from_state": from_state,
            "to_state": to_state,
            "at": rfc3339(at_us),
            "reason": reason,
            "ticket_id": ticket_id,
            "cameras": ids,
            "element": {"tag": tag, "value": value} if tag else None,
            **(extra or {}),
        }
    )
    return [OutboxRow(h.key, ids[0], delivery_id, text) for h in wanting]
