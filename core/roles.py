"""API key roles as permission sets.

The first three roles are nested (viewer ⊂ investigator ⊂ admin); `technician` is beside
`investigator`, not above or below it: a field technician works tickets (acknowledge, notes,
resolve) and sees status, events, snapshots and live pictures, but never recordings — an
investigator sees recordings but does not work tickets.

A route asks for a role name ("viewer": everything a viewer may do) or for one permission.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ALL_ROLES", "PERMISSIONS", "ROLES", "Permission", "Role", "role_allows"]

Role = Literal["viewer", "technician", "investigator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "investigator", "admin")  # the nested chain, least first
ALL_ROLES: tuple[Role, ...] = ("viewer", "technician", "investigator", "admin")  # what a key may be
Permission = Literal["status", "tickets", "ticket_work", "recordings", "admin"]

# status: /metrics, status, events, snapshots, live; tickets: read tickets and their report;
# ticket_work: acknowledge, notes, resolve; recordings: recordings, playback, clips, media,
# availability report, holds; admin: cameras, keys, audit.
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"status", "tickets"}),
    "technician": frozenset({"status", "tickets", "ticket_work"}),
    "investigator": frozenset({"status", "tickets", "recordings"}),
    "admin": frozenset({"status", "tickets", "ticket_work", "recordings", "admin"}),
}


def role_allows(role: str, needed: str) -> bool:
    """True when `role` may do what `needed` names: a role (all its permissions) or one permission."""
    have = PERMISSIONS.get(role)
    if have is None:
        return False
    want = PERMISSIONS.get(needed, frozenset({needed}))
    return want <= have
