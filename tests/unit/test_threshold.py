"""The threshold comes from config or the manifest's calibration, and never goes below either floor."""

from __future__ import annotations

import pytest

from appliance.config import MatcherConfig, load_config
from appliance.errors import ConfigError
from appliance.matching import ABSOLUTE_FLOOR, resolve_threshold
from appliance.runtime.manifest import ModelSpec, load_manifest


def spec(calibration: dict | None) -> ModelSpec:
    raw = {"calibration": calibration} if calibration else {}
    return ModelSpec(id="emb-x", role="embedder", file="x.tflite", sha256="0" * 64, bytes=1, source="test",
                     licence="test", input={}, output="", raw=raw)


CAL = {"threshold": 0.36, "floor": 0.3, "target_fpir": 1e-3}


def test_default_is_the_manifest_calibration():
    assert resolve_threshold(MatcherConfig(), spec(CAL)) == 0.36


def test_configured_threshold_wins_when_above_the_floor():
    assert resolve_threshold(MatcherConfig(threshold=0.45), spec(CAL)) == 0.45
    assert resolve_threshold(MatcherConfig(threshold=0.3), spec(CAL)) == 0.3  # at the floor is allowed


def test_below_the_manifest_floor_is_refused_naming_field_and_model():
    with pytest.raises(ConfigError) as e:
        resolve_threshold(MatcherConfig(threshold=0.25), spec(CAL))
    assert str(e.value) == "matcher.threshold: 0.25 is below the floor 0.3 calibrated for model 'emb-x'"


def test_below_the_absolute_floor_is_refused_even_if_the_manifest_allows_it():
    lax = {"threshold": 0.36, "floor": 0.0}
    with pytest.raises(ConfigError, match=r"^matcher\.threshold: 0\.1 is below the absolute floor 0\.2 "):
        resolve_threshold(MatcherConfig(threshold=0.1), spec(lax))
    with pytest.raises(ConfigError, match=r"^matcher\.threshold: 0\.1 is below the absolute floor"):
        resolve_threshold(MatcherConfig(threshold=0.1), spec(None))
    assert ABSOLUTE_FLOOR == 0.2


def test_a_manifest_calibrated_below_its_floor_is_refused_naming_the_manifest():
    with pytest.raises(ConfigError, match=r"models\.emb-x\.calibration\.threshold \(manifest\): 0\.15 is below"):
        resolve_threshold(MatcherConfig(), spec({"threshold": 0.15, "floor": 0.1}))


def test_no_threshold_anywhere_is_refused():
    with pytest.raises(ConfigError, match=r"^matcher\.threshold: not set, and model 'emb-x' has no calibration"):
        resolve_threshold(MatcherConfig(), spec(None))


def test_the_installed_manifest_default_embedder_resolves():
    manifest = load_manifest()
    spec_ = manifest.default("embedder")
    t = resolve_threshold(load_config().matcher, spec_)
    assert t == spec_.calibration.threshold
    assert t >= max(ABSOLUTE_FLOOR, spec_.calibration.floor)
