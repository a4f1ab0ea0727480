"""ingest: cameras → spool. PyAV pulls RTSP, segments are written by stream copy, health is sampled.

Ingest talks to the rest of vigil only through `storage` (spool, catalog, object store).
"""

__all__: list[str] = []
