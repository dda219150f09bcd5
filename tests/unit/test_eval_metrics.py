"""Verification and open-set metrics on small constructed examples where the right answer is known."""

import numpy as np
import pytest

from appliance.evaluation import metrics


def test_threshold_at_rate_accepts_at_most_the_rate():
    neg = np.arange(1000, dtype=np.float32) / 1000  # 0.000 .. 0.999
    t = metrics.threshold_at_rate(neg, 0.01)
    assert (neg >= t).sum() == 10
    t = metrics.threshold_at_rate(neg, 0.0)
    assert (neg >= t).sum() == 0


def test_tar_at_far():
    impostor = np.linspace(0, 0.5, 10000).astype(np.float32)
    genuine = np.array([0.2, 0.6, 0.7, 0.8], np.float32)
    tar, thr = metrics.tar_at_far(genuine, impostor, 1e-3)
    assert 0.49 < thr <= 0.5 + 1e-6
    assert tar == 0.75


def test_kfold_accuracy_perfectly_separable():
    scores = np.array([0.9, 0.8, 0.1, 0.2] * 5, np.float32)
    same = np.array([True, True, False, False] * 5)
    folds = np.repeat(np.arange(5), 4)
    acc, std = metrics.kfold_accuracy(scores, same, folds)
    assert acc == 1.0 and std == 0.0


def test_kfold_accuracy_counts_missing_faces_as_errors():
    scores = np.array([0.9, -np.inf, 0.1, 0.2] * 5, np.float32)
    same = np.array([True, True, False, False] * 5)
    folds = np.repeat(np.arange(5), 4)
    acc, _ = metrics.kfold_accuracy(scores, same, folds)
    assert acc == pytest.approx(0.75)


def test_open_set_search_rank1_and_rates():
    gallery = np.eye(3, 4, dtype=np.float32)  # subjects a, b, c on axes 0..2
    gallery_ids = np.array(["a", "b", "c"])

    def unit(v):
        v = np.asarray(v, np.float32)
        return v / np.linalg.norm(v)

    probes = np.stack([
        unit([1, 0.1, 0, 0]),  # mated a, right, high score
        unit([0.2, 1, 0, 0]),  # mated a, but nearest is b: wrong
        np.full(4, np.nan, np.float32),  # mated c, no face found
        unit([0, 0, 0, 1]),  # non-mated, scores 0 with everyone
        unit([0, 0, 1, 0.2]),  # non-mated, close to c
    ])
    probe_ids = np.array(["a", "a", "c", "x", "y"])
    mated = np.array([True, True, True, False, False])
    s = metrics.open_set_search(gallery, gallery_ids, probes, probe_ids, mated)
    assert s.mated_correct.tolist() == [True, False, False]
    assert s.nonmated_top_score[0] == pytest.approx(0.0, abs=1e-6)
    assert metrics.tpir_at_threshold(s, 0.5) == pytest.approx(1 / 3)
    assert metrics.fpir_at_threshold(s, 0.5) == pytest.approx(1 / 2)
    t = metrics.threshold_for_fpir(s, 0.0)
    assert metrics.fpir_at_threshold(s, t) == 0.0
    assert metrics.tpir_at_threshold(s, t) == pytest.approx(1 / 3)  # probe 0 scores 0.995 > 0.98
