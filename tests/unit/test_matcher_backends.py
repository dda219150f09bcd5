"""Every back-end agrees with numpy exact search: the exact ones identically, HNSW at recall@1 >= 0.99."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.matching import BACKENDS, Gallery, l2_normalise, make_matcher

EXACT = ["usearch", "faiss"]
APPROX = ["usearch-hnsw", "faiss-hnsw"]


def random_gallery(n: int, dim: int = 128, seed: int = 0) -> Gallery:
    rng = np.random.default_rng(seed)
    return Gallery([f"s{i}" for i in range(n)], l2_normalise(rng.standard_normal((n, dim), dtype=np.float32)))


def mated_probes(g: Gallery, n: int, seed: int = 1) -> np.ndarray:
    """Noisy copies of gallery rows at cosine ~0.6 to their mate, like genuine face pairs."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, g.n_templates, n)
    return l2_normalise(g.embeddings[rows] + 0.11 * rng.standard_normal((n, g.dim), dtype=np.float32))


def test_numpy_top_k_is_the_brute_force_answer():
    g = random_gallery(500)
    q = l2_normalise(np.random.default_rng(2).standard_normal((20, 128), dtype=np.float32))
    res = make_matcher("numpy", g).search(q, 7)
    sims = q @ g.embeddings.T
    expected = np.argsort(-sims, axis=1)[:, :7]
    assert res.scores.shape == res.subjects.shape == (20, 7)
    np.testing.assert_array_equal(res.subjects, expected)
    np.testing.assert_allclose(res.scores, np.take_along_axis(sims, expected, axis=1), rtol=1e-6)
    assert (np.diff(res.scores, axis=1) <= 0).all()


@pytest.mark.parametrize("backend", EXACT)
def test_exact_backends_return_the_same_top_k_as_numpy(backend):
    g = random_gallery(2000)
    q = np.vstack([mated_probes(g, 30), l2_normalise(np.random.default_rng(3).standard_normal((30, 128)))])
    ref = make_matcher("numpy", g).search(q, 5)
    res = make_matcher(backend, g).search(q, 5)
    np.testing.assert_array_equal(res.subjects, ref.subjects)
    np.testing.assert_allclose(res.scores, ref.scores, atol=1e-5)


@pytest.mark.parametrize("backend", APPROX)
def test_hnsw_recall_at_1_on_10k(backend):
    g = random_gallery(10_000, seed=4)
    q = mated_probes(g, 400, seed=5)
    ref = make_matcher("numpy", g).search(q, 1).subjects[:, 0]
    got = make_matcher(backend, g).search(q, 1).subjects[:, 0]
    assert np.mean(got == ref) >= 0.99


@pytest.mark.parametrize("backend", APPROX)
def test_approximate_backends_report_exact_scores(backend):
    # The index may store quantised vectors; the score compared with the threshold must be the true cosine.
    g = random_gallery(3000, seed=6)
    q = mated_probes(g, 50, seed=7)
    res = make_matcher(backend, g).search(q, 5)
    rows = res.subjects  # one template per subject: subject index == row
    true = np.einsum("nkd,nd->nk", g.embeddings[rows], q)
    np.testing.assert_allclose(res.scores, true, atol=1e-6)
    assert (np.diff(res.scores, axis=1) <= 0).all()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_single_query_and_k_larger_than_gallery(backend):
    g = random_gallery(3)
    m = make_matcher(backend, g)
    res = m.search(g.embeddings[1], 10)  # one (D,) query, k > subjects
    assert res.scores.shape == (1, 3)
    assert res.candidates(0)[0].subject_id == "s1"
    assert res.candidates(0)[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_empty_gallery_returns_no_candidates(backend):
    res = make_matcher(backend, Gallery.empty(128)).search(np.ones((2, 128), np.float32) / np.sqrt(128), 5)
    assert res.scores.shape == (2, 0)
    assert res.candidates(0) == []


def test_query_of_the_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match=r"shape \(n, 128\)"):
        make_matcher("numpy", random_gallery(5)).search(np.ones(64, np.float32), 1)


def test_unknown_backend_names_the_field():
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match=r"matcher\.backend: unknown back-end 'annoy'"):
        make_matcher("annoy", random_gallery(5))


def test_missing_optional_package_gives_one_clear_line(monkeypatch):
    import builtins

    from appliance.matching import BackendUnavailable

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(BackendUnavailable, match=r"needs the faiss-cpu package: pip install"):
        make_matcher("faiss", random_gallery(5))
