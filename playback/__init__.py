"""playback: what viewers get from recordings — HLS playlists, clips, live, fMP4 byte patching.

It reads through `storage` (catalog, object store, spool) and never writes recordings, as MediaMTX's
`playback/` reads through its `recordstore/`.
"""

__all__: list[str] = []
