"""The digest a background set's build record keeps of the pipeline that built it."""

from __future__ import annotations

from appliance.vision.fingerprint import pipeline_digest

BASE = {"numpy": "1.26.4", "opencv": "4.11.0", "embedder": "m sha256:ab", "quality_gate": "eyes 20px",
        "python": "3.11.7", "machine": "x86_64", "cpu": "x86_64 AVX2", "scores": "background sha256:1"}


def test_what_does_not_move_an_embedding_does_not_move_the_digest():
    """The CPU, the machine, Python and the background set itself are not the pipeline that builds a set."""
    other = {**BASE, "python": "3.11.9", "machine": "aarch64", "cpu": "aarch64 NEON", "scores": "background sha256:2",
             "background_rebuilt": "sha256:3 from the calibrated photos"}
    assert pipeline_digest(other) == pipeline_digest(BASE)


def test_a_library_or_a_setting_moves_it():
    assert pipeline_digest({**BASE, "opencv": "4.12.0"}) != pipeline_digest(BASE)
    assert pipeline_digest({**BASE, "quality_gate": "eyes 24px"}) != pipeline_digest(BASE)


def test_no_fingerprint_no_digest():
    assert pipeline_digest(None) is None and pipeline_digest({}) is None
