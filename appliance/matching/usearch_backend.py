"""usearch back-ends: exact SIMD brute force, and an HNSW graph for very large galleries.

usearch is optional (`pip install 'lfr-appliance[fast]'`); it is imported only when chosen.
Its inner-product metric reports a distance of 1 - dot, turned back into a cosine score here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.matching.base import RowIndexMatcher
from appliance.matching.errors import BackendUnavailable
from appliance.matching.gallery import Gallery

# HNSW defaults. Measured on uniform random 128-d unit vectors (the hardest case for a graph index;
# face embeddings have a lower intrinsic dimension): at 10k rows recall@1 vs exact is 1.0 for mated
# probes; at 100k it is ~0.96 with expansion_search 256 (see docs/benchmarks.md). Raise
# expansion_search for recall, lower it for speed; connectivity 32 doubles the build time.
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 256
# The graph stores int8 vectors: a quarter of the memory traffic of float32, so building 1M rows takes
# minutes rather than tens of minutes on 2 cores, at the same recall for unit vectors. Candidates are
# re-scored exactly against the float32 gallery, so the score that meets the threshold is exact.
HNSW_DTYPE = "i8"
# Cap on (queries x rows) per exact search call, so a batch against 1M rows stays ~100 MB.
EXACT_MAX_BLOCK = 8 * 1024 * 1024


def _usearch() -> Any:
    try:
        import usearch.index as ui
    except ImportError:
        raise BackendUnavailable(
            "matcher back-end 'usearch' needs the usearch package: pip install 'lfr-appliance[fast]' "
            "(or choose matcher.backend = \"numpy\")"
        ) from None
    return ui


def _as_batch(matches: Any, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """usearch returns Matches for one query and padded BatchMatches for several: make both (n, k)."""
    keys = np.full((n, k), -1, np.int64)
    dist = np.full((n, k), np.inf, np.float32)
    if n == 1 and not hasattr(matches, "counts"):
        c = len(matches.keys)
        keys[0, :c], dist[0, :c] = matches.keys, matches.distances
    else:
        counts = np.asarray(matches.counts)
        valid = np.arange(matches.keys.shape[1])[None, :] < counts[:, None]
        keys[:, : matches.keys.shape[1]] = np.where(valid, matches.keys.astype(np.int64), -1)
        dist[:, : matches.keys.shape[1]] = np.where(valid, matches.distances, np.inf)
    return (1.0 - dist).astype(np.float32), keys


class UsearchExactMatcher(RowIndexMatcher):
    """Brute force with usearch's SIMD kernels: exact, nothing to build."""

    name = "usearch"
    exact = True

    def __init__(self, gallery: Gallery, threads: int = 0):
        super().__init__(gallery)
        self._ui = _usearch()
        self.threads = threads  # 0 = all cores

    def _search_rows(self, q: np.ndarray, k_rows: int) -> tuple[np.ndarray, np.ndarray]:
        # usearch's exact search holds a (queries x rows) buffer of ~14 bytes a cell: 1000 queries against
        # 1M rows took 14 GB. Search in blocks of queries, as the numpy back-end does.
        step = max(1, EXACT_MAX_BLOCK // self.gallery.n_templates)
        parts = [
            _as_batch(
                self._ui.search(self.gallery.embeddings, q[a : a + step], k_rows, self._ui.MetricKind.IP,
                                exact=True, threads=self.threads),
                len(q[a : a + step]), k_rows,
            )
            for a in range(0, len(q), step)
        ]
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


class UsearchHNSWMatcher(RowIndexMatcher):
    """Approximate: an HNSW graph over the rows. Worth it only for galleries far beyond a watchlist's size."""

    name = "usearch-hnsw"
    exact = False

    def __init__(
        self,
        gallery: Gallery,
        connectivity: int = HNSW_CONNECTIVITY,
        expansion_add: int = HNSW_EXPANSION_ADD,
        expansion_search: int = HNSW_EXPANSION_SEARCH,
        dtype: str = HNSW_DTYPE,
        threads: int = 0,
    ):
        super().__init__(gallery)
        ui = _usearch()
        self.threads = threads
        self._index = ui.Index(
            ndim=gallery.dim,
            metric=ui.MetricKind.IP,
            dtype=dtype,
            connectivity=connectivity,
            expansion_add=expansion_add,
            expansion_search=expansion_search,
        )
        if gallery.n_templates:
            self._index.add(np.arange(gallery.n_templates, dtype=np.uint64), gallery.embeddings, threads=threads)

    @property
    def expansion_search(self) -> int:
        return int(self._index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._index.expansion_search = int(value)

    def _search_rows(self, q: np.ndarray, k_rows: int) -> tuple[np.ndarray, np.ndarray]:
        return _as_batch(self._index.search(q, k_rows, threads=self.threads), len(q), k_rows)

    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)
