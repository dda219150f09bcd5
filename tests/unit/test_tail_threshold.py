"""The tail estimator of the threshold: right on a known tail, stable where the order statistic jumps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.evaluation import metrics, tail


def _scores(n: int, seed: int = 1) -> np.ndarray:
    """Non-mated top scores with an exponential upper tail of scale 0.03 above 0.35 (a known truth)."""
    rng = np.random.default_rng(seed)
    return 0.35 + rng.exponential(0.03, n) - 0.1 * (rng.random(n) < 0.5)


def test_recovers_a_known_quantile_within_its_interval():
    s = _scores(20000)
    est = tail.tail_threshold(s, 1e-3, resamples=200)
    truth = 0.35 + 0.03 * math.log(0.5 / 1e-3)  # half the scores carry the exponential tail
    assert est.method == "tail"
    assert est.ci95[0] <= truth <= est.ci95[1]
    assert est.value == pytest.approx(truth, abs=0.01)


def test_one_face_moves_the_empirical_threshold_but_hardly_the_tail():
    s = _scores(464)  # the size of LFW's smaller gender group: FPIR 1e-3 allows no false alarm at all
    moved = s.copy()
    moved[np.argmax(moved)] += 0.05  # one face scores higher in another build
    assert metrics.threshold_at_rate(moved, 1e-3) - metrics.threshold_at_rate(s, 1e-3) == pytest.approx(0.05, abs=1e-6)
    shift = tail.tail_threshold(moved, 1e-3, resamples=0).value - tail.tail_threshold(s, 1e-3, resamples=0).value
    assert 0 < shift < 0.05 / 10  # one of the top third of the scores: it pulls, but not alone


def test_small_numeric_noise_moves_it_by_about_the_noise():
    s = _scores(464)
    noisy = s + np.random.default_rng(7).normal(0, 0.002, len(s))
    a = tail.tail_threshold(s, 1e-3, resamples=0).value
    b = tail.tail_threshold(noisy, 1e-3, resamples=0).value
    assert abs(a - b) < 0.006


def test_interval_brackets_the_value_and_is_reproducible():
    s = _scores(500)
    a = tail.tail_threshold(s, 1e-3, resamples=300)
    b = tail.tail_threshold(s, 1e-3, resamples=300)
    assert a.ci95[0] <= a.value <= a.upper <= a.ci95[1] and a.ci95 == b.ci95
    assert a.ci95[1] - a.ci95[0] > 0


def test_probes_without_a_face_count_in_the_rate():
    s = _scores(400)
    with_missing = np.concatenate([s, np.full(100, -np.inf)])
    assert tail.tail_threshold(with_missing, 1e-3, resamples=0).value < tail.tail_threshold(s, 1e-3, resamples=0).value


def test_too_few_scores_fall_back_to_the_order_statistic():
    s = _scores(20)
    est = tail.tail_threshold(s, 1e-3, resamples=0)
    assert est.method == "empirical" and est.value == est.empirical


def test_a_rate_inside_the_data_needs_no_extrapolation():
    s = _scores(1000)
    est = tail.tail_threshold(s, 0.2, resamples=0)
    assert est.method == "empirical"


def test_equitable_rule_takes_the_strictest_group():
    groups = {"a": _scores(464, 1), "b": _scores(1400, 2) - 0.05}
    eq = tail.equitable_tail_threshold(groups, 1e-3, resamples=200)
    value, per_group = eq.value, eq.per_group
    assert value == max(t.value for t in per_group.values()) == per_group["a"].value
    assert eq.ci95[0] <= value <= eq.upper <= eq.ci95[1]


def test_one_search_per_person_is_the_plain_bootstrap():
    s = _scores(1500, 4)
    plain = tail.tail_threshold(s, 1e-3, resamples=100)
    named = tail.tail_threshold(s, 1e-3, resamples=100, people=np.array([f"person {i:04d}" for i in range(len(s))]))
    assert (plain.value, plain.ci95, plain.upper) == (named.value, named.ci95, named.upper)


def test_a_persons_searches_are_resampled_together():
    # 1,500 people, each searching three times with the same score: the data hold no more information than
    # 1,500 searches, so the interval must be as wide as theirs, not as narrow as 4,500 independent ones
    s = _scores(1500, 5)
    alone = tail.tail_threshold(s, 1e-3, resamples=300)
    tripled, people = np.repeat(s, 3), np.repeat(np.arange(1500), 3)
    together = tail.tail_threshold(tripled, 1e-3, resamples=300, people=people)
    independent = tail.tail_threshold(tripled, 1e-3, resamples=300)

    def width(t: tail.TailThreshold) -> float:
        return t.ci95[1] - t.ci95[0]

    assert width(together) == pytest.approx(width(alone), rel=0.25)
    assert width(together) > 1.4 * width(independent)
    assert together.upper > independent.upper


def test_equitable_bound_takes_each_groups_people():
    groups = {"a": np.repeat(_scores(500, 6), 2), "b": _scores(1400, 7) - 0.05}
    people = {"a": np.repeat(np.arange(500), 2), "b": np.arange(1400)}
    eq = tail.equitable_tail_threshold(groups, 1e-3, resamples=200, people=people)
    naive = tail.equitable_tail_threshold(groups, 1e-3, resamples=200)
    assert eq.value == naive.value  # the point estimate does not depend on who searched
    assert eq.upper > naive.upper
