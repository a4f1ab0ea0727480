"""vigil: the composition root — the `vigil` command, the service and the demo.

It wires the rooms together: `ingest` (cameras → spool), `storage` (spool, object store, catalog),
`playback` (playlists, clips, live), `reports` and `api` (HTTP), all standing on `core`. Nothing
imports this package back.
"""

from core import __version__

__all__ = ["__version__"]
