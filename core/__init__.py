"""core: the foundation every room may import — settings, clock, logs, redaction, shared names.

It imports nothing of vigil's other packages, so `ingest`, `storage`, `playback`, `reports`, `api`
and the composition root (`vigil`) can all stand on it without import cycles.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
