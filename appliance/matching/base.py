"""The one Matcher interface every 1:N search back-end implements.

`search(queries, k)` returns, per query, the k best *subjects* (not rows): a subject with several
templates is scored by its best one. Scores are cosine similarities (rows and queries are unit vectors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from appliance.matching.gallery import Gallery

# Extra rows an approximate index is asked for, re-scored exactly (cheap: a few dot products per query).
APPROX_EXTRA_CANDIDATES = 16


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """Top-k per query: scores (n, k) float32, descending, and subjects (n, k) indices into gallery.subjects.

    k is min(requested k, subjects in the gallery); an empty gallery gives k = 0. An approximate back-end
    that finds fewer than k subjects pads with score -inf and index -1.
    """

    gallery: Gallery
    scores: np.ndarray
    subjects: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def candidates(self, i: int) -> list[Candidate]:
        ids = self.gallery.subjects
        return [
            Candidate(ids[int(s)], float(v)) for s, v in zip(self.subjects[i], self.scores[i], strict=True) if s >= 0
        ]


class Matcher(ABC):
    """A search index built over one Gallery. Immutable after construction; safe for concurrent search."""

    name: str = "?"
    exact: bool = True

    def __init__(self, gallery: Gallery):
        self.gallery = gallery

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        q = as_queries(queries, self.gallery.dim)
        k = min(int(k), self.gallery.n_subjects)
        if k < 1:
            return SearchResult(self.gallery, np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64))
        scores, subjects = self._search(q, k)
        return SearchResult(self.gallery, scores, subjects)

    @abstractmethod
    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k subjects for a non-empty gallery; 1 <= k <= n_subjects; q is (n, D) float32 C-contiguous."""

    def memory_bytes(self) -> int:
        """Approximate bytes held by the index beyond the Gallery itself (for the benchmark)."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.gallery!r})"


def as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape (n, {dim}) or ({dim},), got {np.shape(queries)}")
    return np.ascontiguousarray(q)


class RowIndexMatcher(Matcher):
    """Base for back-ends that search rows (templates): asks for enough rows, then keeps each subject's best."""

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        g = self.gallery
        # The k-th best subject's best row is at worst row number (k-1)*max_templates + 1.
        k_rows = min(g.n_templates, (k - 1) * g.max_templates + 1)
        if not self.exact:
            # Fetch a margin of extra candidates: the exact re-scoring below then settles near-ties that
            # the index (quantised vectors, greedy graph walk) ranked the wrong way round.
            k_rows = min(g.n_templates, k_rows + APPROX_EXTRA_CANDIDATES)
        scores, rows = self._search_rows(q, k_rows)
        if not self.exact:
            scores, rows = rescore(g.embeddings, q, rows)
        return rows_to_subjects(scores, rows, g.row_subject, k)

    @abstractmethod
    def _search_rows(self, q: np.ndarray, k_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) each (n, k_rows), best first; missing results as row -1."""


def rescore(embeddings: np.ndarray, q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine for the candidate rows an approximate index found, re-sorted best first.

    The score compared with the alert threshold is then always the exact one, whatever the index stores
    (an HNSW index may hold quantised vectors): only which candidates were found is approximate.
    """
    rows = rows.astype(np.int64, copy=False)
    valid = rows >= 0
    exact = np.einsum("nkd,nd->nk", embeddings[np.where(valid, rows, 0)], q)
    exact = np.where(valid, exact, -np.inf).astype(np.float32)
    order = np.argsort(-exact, axis=1, kind="stable")
    return np.take_along_axis(exact, order, axis=1), np.take_along_axis(np.where(valid, rows, -1), order, axis=1)


def rows_to_subjects(
    scores: np.ndarray, rows: np.ndarray, row_subject: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map best-first row hits to best-first unique subjects, k per query (padded with -inf / -1)."""
    rows = rows.astype(np.int64, copy=False)
    valid = rows >= 0
    subj = np.where(valid, row_subject[np.where(valid, rows, 0)], -1)
    n = len(rows)
    out_s = np.full((n, k), -np.inf, np.float32)
    out_i = np.full((n, k), -1, np.int64)
    if rows.shape[1] == k and len(row_subject) == int(row_subject.max()) + 1:
        # One template per subject: rows are subjects already.
        out_s[:, :] = np.where(valid, scores, -np.inf)
        out_i[:, :] = subj
        return out_s, out_i
    for i in range(n):
        seen: set[int] = set()
        j = 0
        for s, v in zip(subj[i], scores[i], strict=True):
            if s < 0 or s in seen:
                continue
            seen.add(int(s))
            out_s[i, j], out_i[i, j] = v, s
            j += 1
            if j == k:
                break
    return out_s, out_i
