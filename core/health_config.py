"""Health thresholds: the global settings (`HealthConfig`) and one camera's overrides of them.

`HealthOverrides` is made from `HealthConfig`'s own fields, constraints included, so an override is
checked by the same rules wherever it comes in (the config file, the API) and a merged config
(`HealthConfig.with_overrides`) is valid whenever its parts are.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from core.validation import StrictModel

__all__ = ["HealthConfig", "HealthOverrides"]


class HealthConfig(StrictModel):
    """Thresholds for feed states; docs/design/health.md gives the measurements behind each default."""

    enabled: bool = True  # False: no decoding, only packet-level states (starting/online/offline)
    # Longest time between decoded samples while the compressed stream looks normal (packet sizes
    # like the camera's recent GOPs); a suspicious GOP or a pending fault decodes every keyframe.
    # 0 = decode every keyframe. Cost and latencies: docs/design/health.md, "Decode cadence".
    sample_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="longest time between decoded samples while the compressed stream looks normal; 0 = every keyframe",
    )
    freeze_after_s: float = Field(default=10.0, gt=0)
    stall_timeout_s: float = Field(default=5.0, gt=0)
    black_after_s: float = Field(default=5.0, gt=0)
    tamper_after_s: float = Field(default=20.0, gt=0)
    recover_after_s: float = Field(default=2.0, ge=0)
    # Mean absolute grey-level difference between samples at half resolution, the 1 % most-changed
    # pixels (an OSD clock) left out: quiet σ=2 scenes measure ≥ 0.56 (a dark street), frozen
    # pictures ≤ 0.33 (up to 0.84 from bitrate-mode encoders: see the come-back rule in rules.py).
    freeze_diff: float = Field(default=0.4, gt=0)
    # Median P-frame size over keyframe size: above it the encoder is spending on change, so the
    # picture is not called frozen (frozen ≤ 0.06 with every encoder measured).
    freeze_p_ratio: float = Field(default=0.1, gt=0)
    black_luma: float = Field(default=32.0, ge=0, le=255)  # a pixel darker than this is dark
    black_fraction: float = Field(default=0.98, gt=0, le=1)  # share of dark pixels that makes black
    tamper_ratio: float = Field(default=0.2, gt=0, lt=1)  # sharpness below this share of the baseline
    snapshot_interval_s: float = Field(default=10.0, ge=0)

    def with_overrides(self, overrides: HealthOverrides | None) -> HealthConfig:
        """These settings with one camera's overrides applied, validated by the same rules again.

        The one merge: the worker builds every camera's monitor with it. Raises pydantic's
        ValidationError if an override slipped past validation (a catalog row written by hand).
        """
        changes = overrides.model_dump(exclude_none=True) if overrides is not None else {}
        if not changes:
            return self
        return HealthConfig.model_validate({**self.model_dump(), **changes})


def _optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Each field of `model` as `T | None = None`, T keeping its constraints (gt=0 stays gt=0)."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        inner = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        out[name] = (inner | None, Field(None, description=f.description))
    return out


# One camera's departures from the global `HealthConfig`; None = the global value.
HealthOverrides = create_model(  # type: ignore[call-overload]
    "HealthOverrides",
    __base__=StrictModel,
    __module__=__name__,
    __doc__="One camera's health thresholds where they differ from the global ones; the same rules apply.",
    **_optional_fields(HealthConfig),
)
