"""A subject with several templates is one candidate, scored by its best template, on every back-end."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.matching import BACKENDS, Gallery, l2_normalise, make_matcher


@pytest.fixture(scope="module")
def gallery() -> Gallery:
    # 300 subjects with 1 to 4 templates each, rows interleaved (not grouped by subject).
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 5, 300)
    ids = [f"s{i}" for i, c in enumerate(counts) for _ in range(c)]
    order = rng.permutation(len(ids))
    ids = [ids[i] for i in order]
    return Gallery(ids, l2_normalise(rng.standard_normal((len(ids), 64), dtype=np.float32)))


def best_per_subject(g: Gallery, q: np.ndarray) -> np.ndarray:
    sims = q @ g.embeddings.T
    best = np.full((len(q), g.n_subjects), -np.inf, np.float32)
    for row, s in enumerate(g.row_subject):
        best[:, s] = np.maximum(best[:, s], sims[:, row])
    return best


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_results_are_per_subject_best_template(backend, gallery):
    rng = np.random.default_rng(8)
    rows = rng.integers(0, gallery.n_templates, 40)
    q = l2_normalise(gallery.embeddings[rows] + 0.05 * rng.standard_normal((40, 64), dtype=np.float32))
    res = make_matcher(backend, gallery).search(q, 5)
    best = best_per_subject(gallery, q)
    expected = np.argsort(-best, axis=1, kind="stable")[:, :5]
    for i in range(len(q)):
        assert len(set(res.subjects[i].tolist())) == 5  # no subject twice
    if make_matcher(backend, gallery).exact:
        np.testing.assert_array_equal(res.subjects, expected)
        np.testing.assert_allclose(res.scores, np.take_along_axis(best, expected, axis=1), atol=1e-5)
    else:
        assert np.mean(res.subjects[:, 0] == expected[:, 0]) >= 0.95
    # The mate of each probe is the subject of the row it was made from.
    assert np.mean(res.subjects[:, 0] == gallery.row_subject[rows]) >= 0.95


def test_two_templates_of_one_subject_do_not_fill_the_top_k():
    a = l2_normalise(np.array([[1, 0, 0], [0.99, 0.1, 0]], np.float32))
    b = l2_normalise(np.array([[0.5, 0.5, 0.5]], np.float32))
    g = Gallery(["a", "a", "b"], np.vstack([a, b]))
    for backend in BACKENDS:
        res = make_matcher(backend, g).search(np.array([1, 0, 0], np.float32), 2)
        assert [c.subject_id for c in res.candidates(0)] == ["a", "b"], backend
        assert res.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
