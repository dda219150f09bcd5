"""faiss back-ends: IndexFlatIP (exact) and IndexHNSWFlat (approximate).

faiss is optional (`pip install 'lfr-appliance[fast]'`); it is imported only when chosen. Its thread
count is process-wide (OpenMP), so it is left at faiss's default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.matching.base import RowIndexMatcher
from appliance.matching.errors import BackendUnavailable
from appliance.matching.gallery import Gallery
from appliance.matching.usearch_backend import HNSW_CONNECTIVITY, HNSW_EXPANSION_ADD, HNSW_EXPANSION_SEARCH


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise BackendUnavailable(
            "matcher back-end 'faiss' needs the faiss-cpu package: pip install 'lfr-appliance[fast]' "
            "(or choose matcher.backend = \"numpy\")"
        ) from None
    return faiss


class _FaissMatcher(RowIndexMatcher):
    _index: Any

    def _search_rows(self, q: np.ndarray, k_rows: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self._index.search(q, k_rows)
        return scores.astype(np.float32, copy=False), rows


class FaissFlatMatcher(_FaissMatcher):
    """Exact: faiss's brute-force inner product (a copy of the rows inside faiss)."""

    name = "faiss"
    exact = True

    def __init__(self, gallery: Gallery):
        super().__init__(gallery)
        faiss = _faiss()
        self._index = faiss.IndexFlatIP(gallery.dim)
        if gallery.n_templates:
            self._index.add(gallery.embeddings)

    def memory_bytes(self) -> int:
        return self.gallery.embeddings.nbytes  # faiss keeps its own copy


class FaissHNSWMatcher(_FaissMatcher):
    """Approximate: faiss HNSW (same graph parameters as usearch-hnsw, for a like-for-like comparison)."""

    name = "faiss-hnsw"
    exact = False

    def __init__(
        self,
        gallery: Gallery,
        connectivity: int = HNSW_CONNECTIVITY,
        expansion_add: int = HNSW_EXPANSION_ADD,
        expansion_search: int = HNSW_EXPANSION_SEARCH,
    ):
        super().__init__(gallery)
        faiss = _faiss()
        self._index = faiss.IndexHNSWFlat(gallery.dim, connectivity, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = expansion_add
        self._index.hnsw.efSearch = expansion_search
        if gallery.n_templates:
            self._index.add(gallery.embeddings)
        self._connectivity = connectivity

    @property
    def expansion_search(self) -> int:
        return int(self._index.hnsw.efSearch)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._index.hnsw.efSearch = int(value)

    def memory_bytes(self) -> int:
        # Vectors plus the level-0 graph (2*M neighbours of 4 bytes per row); upper levels are small.
        n = self.gallery.n_templates
        return self.gallery.embeddings.nbytes + n * 2 * self._connectivity * 4
