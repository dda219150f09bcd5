"""MatchService: open-set identification against the current gallery, which swaps atomically.

`swap(gallery)` builds the new index off to the side, then replaces one reference under a lock. A reader
takes that reference once per call, so every answer comes from one whole gallery, old or new, never a mix.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import MatcherConfig
from appliance.matching.base import Candidate, Matcher
from appliance.matching.errors import GalleryError
from appliance.matching.factory import make_matcher
from appliance.matching.gallery import Gallery
from appliance.matching.normalise import BackgroundNormaliser, normaliser_for
from appliance.matching.threshold import check_threshold, resolve_threshold
from appliance.runtime.manifest import ModelSpec

# Candidates fetched beyond top_k when scores are normalised: a subject's adjusted rank can differ from its
# cosine rank, so the re-ranked top_k is taken from a wider cosine shortlist.
NORMALISED_SHORTLIST = 10


@dataclass(frozen=True)
class Match:
    """A suggestion for a person to review: the best subject at or above the threshold, and its evidence."""

    subject_id: str
    score: float
    threshold: float
    candidates: tuple[Candidate, ...]  # top-k, best first (the first is this match), for display
    metadata: Mapping[str, Any]
    watchlist_id: str | None
    watchlist_version: int | None
    watchlist_hash: str | None
    backend: str
    cosine: float | None = None  # the raw cosine of the best template, when the score is normalised


@dataclass(frozen=True)
class _Current:
    """The matcher and the per-subject offsets for its gallery: swapped together, read together."""

    matcher: Matcher
    offsets: np.ndarray | None  # (n_subjects,) background offsets, or None without normalisation


class MatchService:
    """Holds the current matcher. identify() is safe from many threads while another thread swaps."""

    def __init__(
        self,
        threshold: float,
        backend: str = "numpy",
        top_k: int = 5,
        gallery: Gallery | None = None,
        dim: int = 128,
        normaliser: BackgroundNormaliser | None = None,
        **backend_params: Any,
    ):
        self.threshold = check_threshold(threshold)
        self.normaliser = normaliser
        self.backend = backend
        self.top_k = int(top_k)
        self._params = backend_params
        self.dim = gallery.dim if gallery is not None else int(dim)
        self._lock = threading.Lock()
        if normaliser is not None and normaliser.dim != self.dim:
            raise GalleryError(f"background set has {normaliser.dim}-d faces; this matcher serves {self.dim}-d")
        start = gallery if gallery is not None else Gallery.empty(self.dim)
        self._current = self._build(start)

    # [matcher] settings a reload may change: the threshold (resolved against the floor by the caller) and
    # top_k. The back-end's index is built at start: a new back-end needs a restart.
    RELOADABLE = frozenset({"threshold", "top_k"})

    def update_config(self, matcher_config: Any, threshold: float) -> None:
        """Call between frames from the thread that calls identify(); `threshold` from resolve_threshold."""
        self.threshold = check_threshold(threshold)
        self.top_k = int(matcher_config.top_k)

    @classmethod
    def from_config(cls, matcher_config: Any, threshold: float, gallery: Gallery | None = None,
                    normaliser: BackgroundNormaliser | None = None) -> MatchService:
        """threshold comes from resolve_threshold(config.matcher, embedder spec), on the normaliser's scale."""
        return cls(threshold, backend=matcher_config.backend, top_k=matcher_config.top_k, gallery=gallery,
                   normaliser=normaliser)

    @classmethod
    def for_embedder(cls, matcher_config: MatcherConfig, embedder_spec: ModelSpec, gallery: Gallery | None = None,
                     models_root: Path | None = None) -> MatchService:
        """The van's matcher for this embedder: its calibrated threshold (or the configured one, never below the
        floor) on its score scale, with the background set when the manifest normalises its scores."""
        return cls.from_config(matcher_config, resolve_threshold(matcher_config, embedder_spec), gallery,
                               normaliser_for(embedder_spec, models_root))

    def _build(self, gallery: Gallery) -> _Current:
        matcher = make_matcher(self.backend, gallery, **self._params)
        offsets = None
        if self.normaliser is not None:
            offsets = self.normaliser.subject_offsets(gallery.embeddings, gallery.row_subject, gallery.n_subjects)
        return _Current(matcher, offsets)

    @property
    def matcher(self) -> Matcher:
        with self._lock:
            return self._current.matcher

    @property
    def gallery(self) -> Gallery:
        return self.matcher.gallery

    def swap(self, gallery: Gallery) -> Gallery:
        """Build an index for gallery, then make it current in one step. Returns the previous gallery."""
        if gallery.dim != self.dim:
            raise GalleryError(f"gallery has {gallery.dim}-d templates; this matcher serves {self.dim}-d embeddings")
        new = self._build(gallery)  # slow part: readers keep the old one
        with self._lock:
            old, self._current = self._current, new
        return old.matcher.gallery

    def identify(
        self, embeddings: np.ndarray, threshold: float | None = None
    ) -> Match | list[Match | None] | None:
        """Open-set: the top-1 subject if its score >= threshold, else None. An empty gallery gives None.

        One embedding (D,) gives Match | None; several (n, D) give a list of them. With a normaliser the
        score is the adjusted one (normalise.py) and the candidates are re-ranked by it.
        """
        t = self.threshold if threshold is None else check_threshold(threshold)
        with self._lock:
            current = self._current  # one reference for the whole call: one whole gallery and its offsets
        matcher = current.matcher
        single = np.ndim(embeddings) == 1
        k = self.top_k if current.offsets is None else max(self.top_k, NORMALISED_SHORTLIST)
        result = matcher.search(embeddings, k)
        scores, subjects, cosines = result.scores, result.subjects, result.scores
        if current.offsets is not None and self.normaliser is not None and scores.shape[1]:
            probe = self.normaliser.offsets(np.atleast_2d(embeddings))
            adjusted = np.where(subjects >= 0, scores - probe[:, None] - current.offsets[np.maximum(subjects, 0)],
                                -np.inf).astype(np.float32)
            order = np.argsort(-adjusted, axis=1, kind="stable")[:, : self.top_k]
            scores = np.take_along_axis(adjusted, order, axis=1)
            cosines = np.take_along_axis(result.scores, order, axis=1)
            subjects = np.take_along_axis(subjects, order, axis=1)
        g = matcher.gallery
        out: list[Match | None] = []
        for i in range(len(result)):
            if scores.shape[1] == 0 or not scores[i, 0] >= t:
                out.append(None)
                continue
            cands = tuple(Candidate(g.subjects[int(s)], float(v))
                          for s, v in zip(subjects[i], scores[i], strict=True) if s >= 0)
            best = cands[0]
            out.append(
                Match(
                    subject_id=best.subject_id,
                    score=best.score,
                    threshold=t,
                    candidates=cands,
                    metadata=g.metadata.get(best.subject_id, {}),
                    watchlist_id=g.watchlist_id,
                    watchlist_version=g.version,
                    watchlist_hash=g.hash,
                    backend=matcher.name,
                    cosine=float(cosines[i, 0]) if current.offsets is not None else None,
                )
            )
        return out[0] if single else out
