"""Choose a back-end by name: `make_matcher("numpy", gallery)`."""

from __future__ import annotations

from typing import Any

from appliance.errors import ConfigError
from appliance.matching.base import Matcher
from appliance.matching.faiss_backend import FaissFlatMatcher, FaissHNSWMatcher
from appliance.matching.gallery import Gallery
from appliance.matching.numpy_backend import NumpyMatcher
from appliance.matching.usearch_backend import UsearchExactMatcher, UsearchHNSWMatcher

# Exact back-ends return identical top-k; the -hnsw ones trade recall for speed on huge galleries.
BACKENDS: dict[str, type[Matcher]] = {
    "numpy": NumpyMatcher,
    "usearch": UsearchExactMatcher,
    "usearch-hnsw": UsearchHNSWMatcher,
    "faiss": FaissFlatMatcher,
    "faiss-hnsw": FaissHNSWMatcher,
}


def make_matcher(backend: str, gallery: Gallery, **params: Any) -> Matcher:
    """Build a matcher over gallery. Raises BackendUnavailable (one line) if the package is missing."""
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise ConfigError(f"matcher.backend: unknown back-end {backend!r}; known: {', '.join(BACKENDS)}") from None
    return cls(gallery, **params)
