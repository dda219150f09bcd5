"""Score normalisation against a background set: the offsets, the van's matcher and the evaluation agree."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from appliance.evaluation import metrics
from appliance.matching import Gallery, GalleryError, MatchService, l2_normalise
from appliance.matching.normalise import METHOD, BackgroundNormaliser, load_background, normaliser_for


def unit(rng: np.random.Generator, n: int, d: int = 32) -> np.ndarray:
    return l2_normalise(rng.standard_normal((n, d), dtype=np.float32))


def test_offset_is_half_the_mean_of_the_k_best_background_scores():
    rng = np.random.default_rng(0)
    background, faces = unit(rng, 50), unit(rng, 7)
    norm = BackgroundNormaliser(background, k=5)
    expected = 0.5 * np.sort(faces @ background.T, axis=1)[:, -5:].mean(axis=1)
    np.testing.assert_allclose(norm.offsets(faces), expected, rtol=1e-5)
    faces[2] = np.nan  # no face found: no offset, the score stays -inf elsewhere
    assert norm.offsets(faces)[2] == 0.0


def test_a_face_that_looks_like_everyone_needs_more_evidence():
    # A "hub" probe close to the background crowd and a distinctive probe, both at cosine 0.7 to their
    # best subject: raw, both alert at 0.5; normalised, the hub's score falls further than the other's.
    rng = np.random.default_rng(1)
    crowd_centre = unit(rng, 1)[0]
    background = l2_normalise(crowd_centre + 0.3 * unit(rng, 200))
    subjects = unit(rng, 20)
    norm = BackgroundNormaliser(background, k=5)
    hub = l2_normalise(crowd_centre + 0.2 * subjects[3])
    plain = l2_normalise(subjects[7] + 0.2 * unit(rng, 1)[0])
    assert norm.offsets(hub[None])[0] > norm.offsets(plain[None])[0] + 0.2
    gallery = Gallery([f"s{i}" for i in range(20)], subjects)
    svc = MatchService(threshold=0.3, gallery=gallery, dim=32, normaliser=norm)
    m = svc.identify(plain)
    assert m is not None and m.subject_id == "s7"
    sub_off = norm.subject_offsets(subjects, gallery.row_subject, 20)
    assert m.score == pytest.approx(m.cosine - norm.offsets(plain[None])[0] - sub_off[7], abs=1e-5)
    assert svc.identify(hub) is None or svc.identify(hub).score < float(hub @ subjects[3])


def test_several_templates_take_the_mean_offset_and_the_best_cosine():
    rng = np.random.default_rng(2)
    background, t = unit(rng, 40), unit(rng, 3)
    norm = BackgroundNormaliser(background, k=3)
    g = Gallery(["a", "b", "a"], t)
    off = norm.subject_offsets(g.embeddings, g.row_subject, g.n_subjects)
    rows = norm.offsets(t)
    np.testing.assert_allclose(off, [(rows[0] + rows[2]) / 2, rows[1]], rtol=1e-5)
    svc = MatchService(threshold=0.2, gallery=g, dim=32, normaliser=norm)
    probe = l2_normalise(t[2] + 0.1 * unit(rng, 1)[0])
    m = svc.identify(probe)
    assert m.subject_id == "a" and m.cosine == pytest.approx(float(probe @ t[2]), abs=1e-5)
    assert [c.score for c in m.candidates] == sorted((c.score for c in m.candidates), reverse=True)


def test_swap_recomputes_the_offsets_with_the_new_gallery():
    rng = np.random.default_rng(3)
    norm = BackgroundNormaliser(unit(rng, 40), k=3)
    old, new = unit(rng, 5), unit(rng, 5)
    svc = MatchService(threshold=0.2, gallery=Gallery(list("abcde"), old), dim=32, normaliser=norm)
    svc.swap(Gallery(list("vwxyz"), new))
    m = svc.identify(new[1])
    assert m.subject_id == "w"
    assert m.score == pytest.approx(1.0 - 2 * norm.offsets(new[1][None])[0], abs=1e-5)


def test_open_set_search_with_offsets_matches_the_matcher():
    rng = np.random.default_rng(4)
    norm = BackgroundNormaliser(unit(rng, 60), k=5)
    g, p = unit(rng, 30), unit(rng, 10)
    ids = np.array([f"s{i}" for i in range(30)])
    s = metrics.open_set_search(g, ids, p, ids[:10], np.zeros(10, bool), norm.offsets(g), norm.offsets(p))
    svc = MatchService(threshold=0.2, gallery=Gallery(list(ids), g), dim=32, normaliser=norm,
                       top_k=1)
    for i in range(10):
        raw = p[i] @ g.T - norm.offsets(p[i][None])[0] - norm.offsets(g)
        assert s.nonmated_top_score[i] == pytest.approx(raw.max(), abs=1e-5)
        m = svc.identify(p[i])
        assert (m is None) == (raw.max() < 0.2)


def test_bad_background_sets_are_refused_with_a_reason(tmp_path: Path):
    with pytest.raises(GalleryError, match="top 5"):
        BackgroundNormaliser(np.zeros((3, 8), np.float32), k=5)
    with pytest.raises(GalleryError, match="not found: run `make models`"):
        load_background(tmp_path / "missing.npy", 5)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(GalleryError, match="not a valid"):
        load_background(tmp_path / "bad.npy", 5)
    spec = SimpleNamespace(id="m", normalisation={"method": "z-norm", "k": 5, "background": "b.npy"})
    with pytest.raises(GalleryError, match="unknown"):
        normaliser_for(spec, tmp_path)
    raw = SimpleNamespace(id="m", normalisation=None)
    assert normaliser_for(raw, tmp_path) is None
    np.save(tmp_path / "b.npy", l2_normalise(np.random.default_rng(5).standard_normal((9, 8)).astype(np.float32)))
    ok = SimpleNamespace(id="m", normalisation={"method": METHOD, "k": 5, "background": "b.npy"})
    assert normaliser_for(ok, tmp_path).sha256
    with pytest.raises(GalleryError, match="8-d"):
        MatchService(threshold=0.3, dim=32, normaliser=normaliser_for(ok, tmp_path))
