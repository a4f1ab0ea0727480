"""API key roles: each can do what those before it can (viewer < investigator < admin)."""

from __future__ import annotations

from typing import Literal

__all__ = ["ROLES", "Role", "role_allows"]

Role = Literal["viewer", "investigator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "investigator", "admin")
_RANK: dict[str, int] = {r: i for i, r in enumerate(ROLES)}


def role_allows(role: str, needed: str) -> bool:
    """True when `role` may do what `needed` may (viewer < investigator < admin)."""
    return role in _RANK and _RANK[role] >= _RANK[needed]
