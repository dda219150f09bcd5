"""The pipeline fingerprint: what a calibration records, and what counts as a change."""

from __future__ import annotations

from appliance.config import load_config
from appliance.vision.fingerprint import pipeline_differences, pipeline_fingerprint


def test_the_fingerprint_names_every_library_and_model_that_touches_the_scores():
    fp = pipeline_fingerprint(load_config(None))
    for key in ("numpy", "opencv", "interpreter", "detector", "landmarks", "embedder", "alignment", "preprocessing"):
        assert fp[key], key
    assert fp["embedder"].startswith("mobilefacenet-int8 sha256:")
    assert all(isinstance(v, str) for v in fp.values())  # TOML-friendly, compared as text


def test_a_changed_library_is_named_with_both_versions():
    running = pipeline_fingerprint(load_config(None))
    calibrated = {**running, "opencv": "4.10.0"}
    assert pipeline_differences(calibrated, running) == [f"opencv {running['opencv']} (calibrated with 4.10.0)"]


def test_python_and_machine_are_recorded_but_not_a_change():
    running = pipeline_fingerprint(load_config(None))
    assert pipeline_differences({**running, "machine": "aarch64", "python": "3.10.12"}, running) == []


def test_a_changed_setting_or_model_is_a_change():
    running = pipeline_fingerprint(load_config(None))
    other = pipeline_fingerprint(load_config(None, {"models.embed_flip": False}))
    assert any(d.startswith("preprocessing") for d in pipeline_differences(running, other))


def test_a_calibration_without_a_fingerprint_says_so():
    (line,) = pipeline_differences(None, pipeline_fingerprint(load_config(None)))
    assert "does not record its pipeline" in line
