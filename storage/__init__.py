"""storage: the spool, the object store, the catalog — what ingest writes and the api reads."""

__all__: list[str] = []
