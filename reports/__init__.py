"""reports: what the history of the catalog says about the camera network (availability, …)."""

__all__: list[str] = []
