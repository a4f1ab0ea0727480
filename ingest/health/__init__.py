"""Feed health: keyframes measured (`metrics`), judged (`rules`), written to the catalog (`monitor`).

States, thresholds and the measurements behind them: docs/design/health.md.
"""

from ingest.health.monitor import HealthMonitor
from ingest.health.rules import FAULTS, STATES, Figures, HealthRules, Sample, Verdict

__all__ = ["FAULTS", "STATES", "Figures", "HealthMonitor", "HealthRules", "Sample", "Verdict"]
