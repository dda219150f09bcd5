"""The pipeline fingerprint: what a calibration records, and what counts as a change."""

from __future__ import annotations

from appliance.config import load_config
from appliance.vision.fingerprint import machine_difference, pipeline_differences, pipeline_fingerprint


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


def test_python_and_machine_are_recorded_but_not_a_library_change():
    running = pipeline_fingerprint(load_config(None))
    assert pipeline_differences({**running, "machine": "aarch64", "python": "3.10.12"}, running) == []


def _arch_evidence(running: dict, threshold: float = 0.6, **kw) -> dict:
    return {"embedder": running["embedder"], "threshold": threshold, "pairs_crossing_threshold": 0,
            "pair_score_max_abs_diff": 0.03, **kw}


def test_another_architecture_is_covered_only_by_evidence_measured_there():
    running = {**pipeline_fingerprint(load_config(None)), "machine": "aarch64"}
    calibrated = {**running, "machine": "x86_64"}
    assert machine_difference({"pipeline": running}, running, 0.6) is None  # calibrated on this architecture
    line = machine_difference({"pipeline": calibrated}, running, 0.6)
    assert line.startswith("machine aarch64 (calibrated on x86_64; the manifest has no evidence")
    covered = {"pipeline": calibrated, "arch": {"aarch64": _arch_evidence(running)}}
    assert machine_difference(covered, running, 0.6) is None
    # Evidence for another threshold (a recalibration since), another model file, or with a pair that crossed.
    assert "threshold 0.6" in machine_difference(covered, running, 0.61)
    other_model = {**covered, "arch": {"aarch64": _arch_evidence({"embedder": "x sha256:00"})}}
    assert "not this embedder file" in machine_difference(other_model, running, 0.6)
    crossed = {**covered, "arch": {"aarch64": _arch_evidence(running, pairs_crossing_threshold=1)}}
    assert "other side" in machine_difference(crossed, running, 0.6)
    # Evidence for arm64 says nothing about another architecture.
    assert machine_difference(covered, {**running, "machine": "riscv64"}, 0.6).startswith("machine riscv64")



def test_the_shipped_manifest_covers_aarch64_for_the_default_embedder():
    from appliance.runtime.manifest import load_manifest

    spec = load_manifest().default("embedder")
    running = {**pipeline_fingerprint(load_config(None)), "machine": "aarch64"}
    assert machine_difference(spec.calibration.evidence, running, spec.calibration.threshold) is None


def test_a_changed_setting_or_model_is_a_change():
    running = pipeline_fingerprint(load_config(None))
    other = pipeline_fingerprint(load_config(None, {"models.embed_flip": False}))
    assert any(d.startswith("preprocessing") for d in pipeline_differences(running, other))


def test_a_calibration_without_a_fingerprint_says_so():
    (line,) = pipeline_differences(None, pipeline_fingerprint(load_config(None)))
    assert "does not record its pipeline" in line
