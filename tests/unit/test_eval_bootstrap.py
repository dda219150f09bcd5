"""The identity bootstrap: draws within strata, weighted rates, intervals, and the differential."""

import numpy as np
import pytest

from appliance.evaluation import bootstrap


def test_weights_resample_each_stratum_to_its_own_size():
    strata = np.array([0, 0, 0, 1, 1, -1])
    w = bootstrap.identity_weights(strata, resamples=500, seed=3)
    assert w.shape == (500, 6)
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3:5].sum(axis=1) == 2).all() and (w[:, 5] == 1).all()
    assert np.array_equal(w, bootstrap.identity_weights(strata, resamples=500, seed=3))  # fixed seed
    assert not np.array_equal(w, bootstrap.identity_weights(strata, resamples=500, seed=4))
    assert w[:, :3].mean() == pytest.approx(1.0, abs=0.1)  # each identity drawn once on average


def test_per_identity_rate_weights_whole_people():
    hits = np.array([2.0, 0.0, 1.0])
    totals = np.array([4.0, 1.0, 1.0])
    assert bootstrap.per_identity_rate(bootstrap.ones(3), hits, totals)[0] == pytest.approx(3 / 6)
    # person 0 drawn twice, person 1 never: (2*2 + 1) / (2*4 + 1)
    assert bootstrap.per_identity_rate(np.array([[2.0, 0.0, 1.0]]), hits, totals)[0] == pytest.approx(5 / 9)
    assert np.isnan(bootstrap.per_identity_rate(np.array([[0.0, 0.0, 0.0]]), hits, totals)[0])


def test_interval_is_the_percentile_range_and_drops_empty_resamples():
    samples = np.concatenate([np.arange(1000) / 1000, [np.nan] * 10])
    lo, hi = bootstrap.interval(samples)
    assert lo == pytest.approx(0.025, abs=2e-3) and hi == pytest.approx(0.975, abs=2e-3)
    assert all(np.isnan(bootstrap.interval(np.array([np.nan]))))


def test_differential_raw_smoothed_and_undefined():
    d = bootstrap.differential({"a": (2, 100), "b": (1, 100)})
    assert d["ratio"] == 2.0 and d["highest"] == "a" and d["lowest"] == "b"
    assert d["ratio_smoothed"] == pytest.approx(2.5 / 1.5, abs=1e-3)
    d = bootstrap.differential({"f": (0, 464), "m": (1, 1410)})
    assert d["ratio"] is None  # the lowest group has no error: the raw ratio is undefined
    # smoothed, the group with no error ranks highest: half an error in 464 weighs more than 1.5 in 1,410
    assert d["ratio_smoothed"] == pytest.approx((0.5 / 464.5) / (1.5 / 1410.5), abs=1e-3)
    assert bootstrap.differential({"a": (1, 10)})["ratio"] is None  # one group: nothing to compare


def test_differential_samples_per_resample():
    counts = {"a": (np.array([0.0, 2.0]), np.array([10.0, 10.0])), "b": (np.array([0.0, 0.0]), np.array([10.0, 10.0]))}
    r = bootstrap.differential_samples(counts)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(5.0)


def test_exact_interval_of_zero_errors_is_not_zero():
    from appliance.evaluation.bootstrap import error_interval, exact_interval

    lo, hi = exact_interval(0, 464)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 464), rel=1e-9)  # Clopper-Pearson, about 3.7 / n
    assert exact_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)  # the textbook value
    lo, hi = exact_interval(7, 14_393_688)
    assert 0 < lo < 7 / 14_393_688 < hi
    # the bootstrap of zero errors is [0, 0]; the reported interval is the wider one
    assert error_interval(np.zeros(100), 0, 464) == (0.0, pytest.approx(hi_zero := 1 - 0.025 ** (1 / 464)))
    assert hi_zero > 0
