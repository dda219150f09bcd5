"""A Gallery is validated on construction: shape, finite values, unit rows, known subjects."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.matching import Gallery, GalleryError, l2_normalise


def unit_rows(n: int, dim: int = 8) -> np.ndarray:
    return l2_normalise(np.random.default_rng(0).standard_normal((n, dim)))


def test_a_valid_gallery_records_subjects_and_watchlist():
    g = Gallery(["a", "b", "a"], unit_rows(3), metadata={"a": {"category": "wanted"}},
                watchlist_id="wl-1", version=7, hash="abc")
    assert g.subjects == ("a", "b")
    assert g.row_subject.tolist() == [0, 1, 0]
    assert (g.n_subjects, g.n_templates, g.dim, g.max_templates) == (2, 3, 8, 2)
    assert g.metadata["a"]["category"] == "wanted"
    assert (g.watchlist_id, g.version, g.hash) == ("wl-1", 7, "abc")
    assert g.embeddings.dtype == np.float32


def test_templates_cannot_be_changed_in_place():
    g = Gallery(["a"], unit_rows(1))
    with pytest.raises(ValueError):
        g.embeddings[0, 0] = 1.0


def test_repr_never_shows_templates():
    assert "0." not in repr(Gallery(["a"], unit_rows(1)))


@pytest.mark.parametrize(
    ("ids", "emb", "message"),
    [
        (["a"], np.ones(8, np.float32), "2-D"),
        (["a", "b"], unit_rows(3), "2 subject ids but 3 embedding rows"),
        ([""], unit_rows(1), "non-empty string"),
        (["a", "b"], np.vstack([unit_rows(1), np.full((1, 8), np.nan)]), "row 1 .* non-finite"),
        (["a", "b"], np.vstack([unit_rows(1), 2 * unit_rows(1)]), "row 1 .* not L2-normalised"),
        (["a"], np.zeros((1, 8)), "not L2-normalised"),
    ],
)
def test_malformed_galleries_are_refused_with_the_reason(ids, emb, message):
    with pytest.raises(GalleryError, match=message):
        Gallery(ids, emb)


def test_metadata_for_an_unknown_subject_is_refused():
    with pytest.raises(GalleryError, match="metadata names 1 subject"):
        Gallery(["a"], unit_rows(1), metadata={"ghost": {}})


def test_empty_gallery_is_valid():
    g = Gallery.empty(128)
    assert (g.n_subjects, g.n_templates, g.dim, g.max_templates) == (0, 0, 128, 0)
