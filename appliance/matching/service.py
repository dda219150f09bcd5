"""MatchService: open-set identification against the current gallery, which swaps atomically.

`swap(gallery)` builds the new index off to the side, then replaces one reference under a lock. A reader
takes that reference once per call, so every answer comes from one whole gallery, old or new, never a mix.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.matching.base import Candidate, Matcher
from appliance.matching.errors import GalleryError
from appliance.matching.factory import make_matcher
from appliance.matching.gallery import Gallery
from appliance.matching.threshold import check_threshold


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


class MatchService:
    """Holds the current matcher. identify() is safe from many threads while another thread swaps."""

    def __init__(
        self,
        threshold: float,
        backend: str = "numpy",
        top_k: int = 5,
        gallery: Gallery | None = None,
        dim: int = 128,
        **backend_params: Any,
    ):
        self.threshold = check_threshold(threshold)
        self.backend = backend
        self.top_k = int(top_k)
        self._params = backend_params
        self.dim = gallery.dim if gallery is not None else int(dim)
        self._lock = threading.Lock()
        start = gallery if gallery is not None else Gallery.empty(self.dim)
        self._matcher: Matcher = make_matcher(backend, start, **backend_params)

    # [matcher] settings a reload may change: the threshold (resolved against the floor by the caller) and
    # top_k. The back-end's index is built at start: a new back-end needs a restart.
    RELOADABLE = frozenset({"threshold", "top_k"})

    def update_config(self, matcher_config: Any, threshold: float) -> None:
        """Call between frames from the thread that calls identify(); `threshold` from resolve_threshold."""
        self.threshold = check_threshold(threshold)
        self.top_k = int(matcher_config.top_k)

    @classmethod
    def from_config(cls, matcher_config: Any, threshold: float, gallery: Gallery | None = None) -> MatchService:
        """threshold comes from resolve_threshold(config.matcher, embedder spec)."""
        return cls(threshold, backend=matcher_config.backend, top_k=matcher_config.top_k, gallery=gallery)

    @property
    def matcher(self) -> Matcher:
        with self._lock:
            return self._matcher

    @property
    def gallery(self) -> Gallery:
        return self.matcher.gallery

    def swap(self, gallery: Gallery) -> Gallery:
        """Build an index for gallery, then make it current in one step. Returns the previous gallery."""
        if gallery.dim != self.dim:
            raise GalleryError(f"gallery has {gallery.dim}-d templates; this matcher serves {self.dim}-d embeddings")
        new = make_matcher(self.backend, gallery, **self._params)  # slow part: readers keep the old one
        with self._lock:
            old, self._matcher = self._matcher, new
        return old.gallery

    def identify(
        self, embeddings: np.ndarray, threshold: float | None = None
    ) -> Match | list[Match | None] | None:
        """Open-set: the top-1 subject if its score >= threshold, else None. An empty gallery gives None.

        One embedding (D,) gives Match | None; several (n, D) give a list of them.
        """
        t = self.threshold if threshold is None else check_threshold(threshold)
        matcher = self.matcher  # one reference for the whole call: one whole gallery
        single = np.ndim(embeddings) == 1
        result = matcher.search(embeddings, self.top_k)
        g = matcher.gallery
        out: list[Match | None] = []
        for i in range(len(result)):
            if result.scores.shape[1] == 0 or not result.scores[i, 0] >= t:
                out.append(None)
                continue
            cands = tuple(result.candidates(i))
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
                )
            )
        return out[0] if single else out
