"""vigil: records and watches a city's CCTV.

This package is the thin shared foundation (settings, clock, the `vigil` command) that wires the
three rooms together: `ingest` (cameras → spool), `storage` (spool, object store, catalog) and
`api` (HTTP). The rooms never import each other except through `storage`.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
