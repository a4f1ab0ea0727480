"""api: the HTTP API (FastAPI) — status, events, live, playback, clips, cameras, keys, metrics."""

__all__ = ["ApiContext", "create_app"]


def __getattr__(name: str) -> object:  # lazy, so `import api.schemas` does not build the app module
    if name == "create_app":
        from api.app import create_app

        return create_app
    if name == "ApiContext":
        from api.dependencies import ApiContext

        return ApiContext
    raise AttributeError(name)
