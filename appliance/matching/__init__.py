"""Open-set 1:N matching: the gallery, the search back-ends, the threshold and its floors, the service."""

from appliance.matching.base import Candidate, Matcher, SearchResult
from appliance.matching.errors import BackendUnavailable, GalleryError
from appliance.matching.factory import BACKENDS, make_matcher
from appliance.matching.gallery import Gallery, l2_normalise
from appliance.matching.service import Match, MatchService
from appliance.matching.threshold import ABSOLUTE_FLOOR, check_threshold, resolve_threshold

__all__ = [
    "ABSOLUTE_FLOOR",
    "BACKENDS",
    "BackendUnavailable",
    "Candidate",
    "Gallery",
    "GalleryError",
    "Match",
    "MatchService",
    "Matcher",
    "SearchResult",
    "check_threshold",
    "l2_normalise",
    "make_matcher",
    "resolve_threshold",
]
