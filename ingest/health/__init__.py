"""Feed health: keyframes measured (`metrics`), judged (`rules`), written to the catalog (`monitor`).

States (their names: core/states.py), thresholds and the measurements behind them: docs/design/health.md.
"""

from ingest.health.monitor import HealthMonitor
from ingest.health.rules import Figures, HealthRules, Sample, Verdict

__all__ = ["Figures", "HealthMonitor", "HealthRules", "Sample", "Verdict"]
