"""The threshold's cover by the evaluation across groups (appliance/matching/group_evidence.py): the shipped
manifest's calibration covers its threshold and stricter ones; a lower threshold, a calibration without
per-group evidence, or none at all, is named."""

from __future__ import annotations

from dataclasses import replace

from appliance.matching.group_evidence import group_figures, group_warning
from appliance.runtime.manifest import load_manifest


def _spec():
    return load_manifest(None).get("mobilefacenet-int8", "embedder")


def test_the_shipped_calibration_covers_its_threshold_and_stricter_ones_only():
    spec = _spec()
    cal = spec.calibration
    assert group_warning(spec, cal.threshold) is None and group_warning(spec, cal.threshold + 0.05) is None
    warning = group_warning(spec, cal.floor)
    assert warning is not None and "below the one calibrated across groups" in warning
    figures = group_figures(spec)
    assert figures["threshold"] == cal.threshold and len(figures["groups"]) >= 2
    assert all(set(g) == {"identities", "non_mated_probes", "false_alarms_at_threshold", "fpir_ci95"}
               for g in figures["groups"].values())


def test_a_calibration_without_groups_or_no_calibration_is_named():
    spec = _spec()
    raw = dict(spec.raw)
    evidence = {k: v for k, v in raw["calibration"]["evidence"].items() if k != "groups"}
    pooled = replace(spec, raw={**raw, "calibration": {**raw["calibration"], "evidence": evidence}})
    assert "no per-group evidence" in group_warning(pooled, spec.calibration.threshold)
    assert group_figures(pooled) is None
    bare = replace(spec, raw={k: v for k, v in raw.items() if k != "calibration"})
    assert "no calibration" in group_warning(bare, 0.5) and group_figures(bare) is None
