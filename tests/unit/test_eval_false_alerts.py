"""Expected false alerts per face for a watchlist size, from the per-comparison FMR in the manifest."""

import numpy as np
import pytest

from appliance.errors import ApplianceError
from appliance.evaluation.false_alerts import empirical_per_face, expected_false_alerts_per_face, per_face
from appliance.runtime.manifest import Calibration


def test_per_face_formula():
    assert per_face(0.0, 10_000) == 0.0
    assert per_face(1e-3, 1) == pytest.approx(1e-3)
    assert per_face(1e-3, 2) == pytest.approx(1 - 0.999**2)
    assert per_face(4e-7, 10_000) == pytest.approx(1 - (1 - 4e-7) ** 10_000, rel=1e-9)
    assert per_face(1.0, 5) == 1.0
    with pytest.raises(ValueError):
        per_face(1.5, 10)


def test_expected_false_alerts_from_a_manifest_calibration():
    cal = Calibration(0.61, 0.49, 1e-3, evidence={"fmr_per_comparison": 1e-6})
    assert expected_false_alerts_per_face(1000, cal) * 10_000 == pytest.approx(10_000 * (1 - (1 - 1e-6) ** 1000))
    assert expected_false_alerts_per_face(100, {"evidence": {"fmr_per_comparison": 1e-6}}) < \
        expected_false_alerts_per_face(1000, cal)
    with pytest.raises(ApplianceError, match="calibrate"):
        expected_false_alerts_per_face(100, Calibration(0.61, 0.49, 1e-3, evidence="old"))


def test_empirical_sampling_counts_faces_off_the_list():
    # 300 people, 1 photo each, all orthogonal-ish except person 0 and 1 who look alike
    rng = np.random.default_rng(0)
    e = rng.normal(size=(300, 64)).astype(np.float32)
    e[1] = e[0] + 0.01
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    ident = np.arange(300)
    r = empirical_per_face(e, ident, 0.9, size=150, samples=20)
    assert r["faces"] == 20 * 150
    # a false alert needs exactly one of 0, 1 on the list: P = 2 * (150/300) * (150/299) per sample, one face
    assert 0 < r["false_alerts"] <= 20
    assert empirical_per_face(e, ident, 0.9, size=250) is None  # fewer than 100 people would stay off the list
