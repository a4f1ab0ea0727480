"""How long a clean stop may take, in one place: the service, the supervisor and every worker
process plan their share of SIGTERM → exit from these figures (README, docs/cluster.md).

A worker's cameras close their open segments (the last fragment is flushed, the journal closed)
within WORKER_DRAIN_S; the uploader gets what is left of DRAIN_S to send them; the API's shutdown
and the interpreter's exit fit in the rest of STOP_WITHIN_S.
"""

from __future__ import annotations

__all__ = ["DRAIN_S", "STOP_WITHIN_S", "WORKER_DRAIN_S"]

STOP_WITHIN_S = 10.0  # SIGTERM → the process has exited, open segments closed and uploaded
DRAIN_S = 8.0  # the service's budget for workers + uploader
WORKER_DRAIN_S = 6.0  # of which the workers' cameras close their open segments; then they are killed
