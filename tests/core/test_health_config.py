"""One camera's health overrides: the same rules as the global settings, one merge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.health_config import HealthConfig, HealthOverrides

CFG = HealthConfig()


def test_overrides_apply_over_the_global_settings() -> None:
    cfg = CFG.with_overrides(HealthOverrides(freeze_after_s=30, black_luma=20))
    assert (cfg.freeze_after_s, cfg.black_luma, cfg.freeze_diff) == (30, 20, CFG.freeze_diff)
    assert CFG.with_overrides(None) is CFG
    assert CFG.with_overrides(HealthOverrides()) is CFG


def test_overrides_have_every_setting_and_its_rule() -> None:
    """Each constrained global setting refuses the same bad value as an override."""
    assert set(HealthOverrides.model_fields) == set(HealthConfig.model_fields)
    bad = {"freeze_after_s": -1, "stall_timeout_s": 0, "black_fraction": 2, "tamper_ratio": 1, "black_luma": 300,
           "sample_interval_s": -1, "enabled": "maybe"}
    for name, value in bad.items():
        with pytest.raises(ValidationError) as e:
            HealthOverrides(**{name: value})
        assert e.value.errors()[0]["loc"] == (name,)
        with pytest.raises(ValidationError):
            HealthConfig(**{name: value})


def test_the_merge_checks_again_what_slipped_past() -> None:
    """An override built without validation (as from a hand-written catalog row) does not get through."""
    with pytest.raises(ValidationError, match="freeze_after_s"):
        CFG.with_overrides(HealthOverrides.model_construct(freeze_after_s=-1))


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "Infinity", "-inf", "NaN"])
def test_numbers_must_be_finite(value: object) -> None:
    """An infinite or NaN threshold is refused like a negative one: `inf` passes `gt=0`, so without
    this a threshold of Infinity (valid in Python's JSON) disabled a check with no error."""
    for name in ("freeze_after_s", "stall_timeout_s", "black_luma", "sample_interval_s"):
        with pytest.raises(ValidationError) as e:
            HealthOverrides(**{name: value})
        assert e.value.errors()[0]["loc"] == (name,)
        with pytest.raises(ValidationError):
            HealthConfig(**{name: value})
