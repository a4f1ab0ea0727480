"""One router per resource; `api.app.create_app` includes them all."""

from api.routers import audit, cameras, clips, events, health, keys, live, media, metrics, recordings, report, status

__all__ = [
    "audit",
    "cameras",
    "clips",
    "events",
    "health",
    "keys",
    "live",
    "media",
    "metrics",
    "recordings",
    "report",
    "status",
]
