"""The alert threshold: from configuration or the model's calibration, never below a floor.

Two floors apply. The manifest's `calibration.floor` is per model, set from its measured score
distributions. ABSOLUTE_FLOOR is a last line in code that no configuration or manifest can go under.
"""

from __future__ import annotations

from appliance.config import MatcherConfig
from appliance.errors import ConfigError
from appliance.runtime.manifest import ModelSpec

# Below a cosine of 0.2 a face embedder no longer separates people: for the 128-d MobileFaceNet the
# threshold at FAR 1e-3 on LFW is 0.333, and unrelated faces routinely score 0.2 and more. An alert there
# would be a random suggestion, so no configuration or manifest may ask for it, whatever the model.
ABSOLUTE_FLOOR = 0.2


def check_threshold(
    value: float, floor: float | None = None, field: str = "matcher.threshold", model: str = "this model"
) -> float:
    """Return value if it is at or above both floors; else ConfigError naming the field and the reason."""
    if not -1.0 <= value <= 1.0:
        raise ConfigError(f"{field}: {value} is not a cosine similarity (must be within [-1, 1])")
    if value < ABSOLUTE_FLOOR:
        raise ConfigError(
            f"{field}: {value} is below the absolute floor {ABSOLUTE_FLOOR} built into the matcher "
            "(below it unrelated faces score as matches)"
        )
    if floor is not None and value < floor:
        raise ConfigError(f"{field}: {value} is below the floor {floor} calibrated for {model}")
    return float(value)


def resolve_threshold(matcher_config: MatcherConfig, embedder_spec: ModelSpec) -> float:
    """The threshold to alert at: matcher.threshold if set, else the manifest's calibrated one."""
    cal = embedder_spec.calibration
    model = f"model '{embedder_spec.id}'"
    if matcher_config.threshold is None:
        if cal is None:
            raise ConfigError(
                f"matcher.threshold: not set, and {model} has no calibration in the manifest; "
                "set matcher.threshold or run `appliance eval --calibrate`"
            )
        field = f"models.{embedder_spec.id}.calibration.threshold (manifest)"
        return check_threshold(cal.threshold, cal.floor, field=field, model=model)
    return check_threshold(matcher_config.threshold, cal.floor if cal else None, model=model)
