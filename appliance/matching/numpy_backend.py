"""Exact search with numpy: one matrix product, then argpartition. No dependency, no index to build.

For a subject with several templates, scores are reduced to the subject's best row with
np.maximum.reduceat over rows grouped by subject.
"""

from __future__ import annotations

import numpy as np

from appliance.matching.base import Matcher
from appliance.matching.gallery import Gallery

# Cap on the (queries x rows) score block held at once, so a batch against 1M rows stays ~128 MB.
MAX_BLOCK = 32 * 1024 * 1024


class NumpyMatcher(Matcher):
    name = "numpy"
    exact = True

    def __init__(self, gallery: Gallery):
        super().__init__(gallery)
        if gallery.max_templates > 1:
            order = np.argsort(gallery.row_subject, kind="stable")
            self._rows = np.ascontiguousarray(gallery.embeddings[order])
            counts = np.bincount(gallery.row_subject)
            self._starts: np.ndarray | None = np.concatenate(([0], np.cumsum(counts)[:-1]))
        else:
            self._rows = gallery.embeddings  # shared, read-only: no copy
            self._starts = None

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(q)
        step = max(1, MAX_BLOCK // max(1, self.gallery.n_templates))
        out_s = np.empty((n, k), np.float32)
        out_i = np.empty((n, k), np.int64)
        for a in range(0, n, step):
            sims = q[a : a + step] @ self._rows.T
            if self._starts is not None:
                sims = np.maximum.reduceat(sims, self._starts, axis=1)
            out_s[a : a + step], out_i[a : a + step] = top_k(sims, k)
        return out_s, out_i


def top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-first top-k columns of each row of sims; equal scores in column order (deterministic)."""
    n = sims.shape[1]
    if k == 1:
        part = np.argmax(sims, axis=1)[:, None]  # first index of the maximum: deterministic
    elif k < n:
        # Partition without negating: a negated copy of a (queries x 1M) block costs as much as the search.
        part = np.sort(np.argpartition(sims, n - k, axis=1)[:, n - k :], axis=1)
    else:
        part = np.broadcast_to(np.arange(n), sims.shape)
    vals = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1).astype(np.int64)
