"""MatchService: open-set identify with a threshold, top-k for display, empty gallery -> no match."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import ConfigError
from appliance.matching import Gallery, GalleryError, MatchService, l2_normalise


@pytest.fixture
def gallery() -> Gallery:
    rng = np.random.default_rng(0)
    return Gallery(
        ["alice", "bob", "carol", "alice"],
        l2_normalise(rng.standard_normal((4, 128), dtype=np.float32)),
        metadata={"alice": {"category": "missing person"}},
        watchlist_id="wl-north",
        version=3,
        hash="h3",
    )


def probe_near(v: np.ndarray, cosine: float, seed: int = 1) -> np.ndarray:
    """A unit vector at exactly the given cosine to unit vector v."""
    r = np.random.default_rng(seed).standard_normal(v.shape).astype(np.float32)
    r -= (r @ v) * v
    r /= np.linalg.norm(r)
    return (cosine * v + np.sqrt(1 - cosine**2) * r).astype(np.float32)


def test_a_probe_above_threshold_is_a_match_with_its_evidence(gallery):
    svc = MatchService(threshold=0.4, top_k=3, gallery=gallery)
    m = svc.identify(probe_near(gallery.embeddings[1], 0.7))
    assert m is not None
    assert (m.subject_id, m.threshold, m.backend) == ("bob", 0.4, "numpy")
    assert m.score == pytest.approx(0.7, abs=1e-4)
    assert m.candidates[0].subject_id == "bob"
    assert len(m.candidates) == 3  # top-k subjects, not templates: alice appears once
    assert len({c.subject_id for c in m.candidates}) == 3
    assert (m.watchlist_id, m.watchlist_version, m.watchlist_hash) == ("wl-north", 3, "h3")


def test_metadata_travels_with_the_match(gallery):
    m = MatchService(threshold=0.4, gallery=gallery).identify(gallery.embeddings[3])
    assert m.subject_id == "alice"
    assert m.metadata["category"] == "missing person"


def test_below_threshold_is_no_match(gallery):
    svc = MatchService(threshold=0.5, gallery=gallery)
    assert svc.identify(probe_near(gallery.embeddings[1], 0.45)) is None
    assert svc.identify(probe_near(gallery.embeddings[1], 0.55)) is not None


def test_score_equal_to_threshold_is_a_match(gallery):
    svc = MatchService(threshold=0.5, gallery=gallery)
    q = probe_near(gallery.embeddings[2], 0.6)
    score = float(svc.matcher.search(q, 1).scores[0, 0])
    assert svc.identify(q, threshold=score) is not None
    assert svc.identify(q, threshold=float(np.nextafter(np.float32(score), np.float32(1)))) is None


def test_batch_of_embeddings_gives_one_answer_each(gallery):
    q = np.stack([gallery.embeddings[0], probe_near(gallery.embeddings[0], 0.1, seed=5)])
    out = MatchService(threshold=0.4, gallery=gallery).identify(q)
    assert isinstance(out, list) and len(out) == 2
    assert out[0].subject_id == "alice" and out[1] is None


def test_empty_gallery_is_no_match_never_an_error():
    svc = MatchService(threshold=0.4)
    q = l2_normalise(np.ones(128, np.float32))
    assert svc.identify(q) is None
    assert svc.identify(np.stack([q, q])) == [None, None]


def test_a_threshold_below_the_floor_is_refused(gallery):
    with pytest.raises(ConfigError, match="below the absolute floor"):
        MatchService(threshold=0.1, gallery=gallery)
    with pytest.raises(ConfigError, match="below the absolute floor"):
        MatchService(threshold=0.4, gallery=gallery).identify(gallery.embeddings[0], threshold=0.05)


def test_swap_replaces_the_gallery_and_returns_the_old_one(gallery):
    svc = MatchService(threshold=0.4)
    old = svc.swap(gallery)
    assert old.n_subjects == 0
    assert svc.gallery is gallery
    assert svc.identify(gallery.embeddings[1]).subject_id == "bob"


def test_swap_to_another_dimension_is_refused(gallery):
    svc = MatchService(threshold=0.4, gallery=gallery)
    with pytest.raises(GalleryError, match="64-d templates; this matcher serves 128-d"):
        svc.swap(Gallery.empty(64))
    assert svc.gallery is gallery
