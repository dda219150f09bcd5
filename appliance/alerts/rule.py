"""The per-track alert rule: when does a track become an alert?

A track becomes an alert for subject S when at least `min_looks` of its embedded looks matched S at or
above the threshold. A subject alerts at most once per track, and not again within `cooldown_s` of its
last alert (the same person lingering near the van, or re-entering as a new track, is one alert).
The rule only suggests: the alert goes to an officer, who decides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from appliance.config import AlertConfig


@dataclass(frozen=True)
class LookResult:
    """What the matcher said about one look: the best subject at or above the threshold, or nothing."""

    subject_id: str | None
    score: float


@dataclass(frozen=True)
class AlertCandidate:
    track_id: int
    subject_id: str
    score: float  # best score of the matching looks
    looks: int  # how many looks matched


@dataclass
class _TrackState:
    hits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    alerted: set[str] = field(default_factory=set)


class AlertRule:
    RELOADABLE = frozenset(AlertConfig.model_fields)  # every field is read per look

    def update_config(self, config: AlertConfig) -> None:
        """Call between frames, from the thread that calls observe()."""
        self.config = config

    def __init__(self, config: AlertConfig | None = None):
        self.config = config or AlertConfig()
        self._tracks: dict[int, _TrackState] = {}
        self._last_alert: dict[str, float] = {}

    def observe(self, track_id: int, look: LookResult, now: float) -> AlertCandidate | None:
        """Feed one embedded look; returns an alert candidate when this look completes the rule."""
        if look.subject_id is None:
            self._tracks.setdefault(track_id, _TrackState())
            return None
        state = self._tracks.setdefault(track_id, _TrackState())
        scores = state.hits[look.subject_id]
        scores.append(look.score)
        if look.subject_id in state.alerted or len(scores) < self.config.min_looks:
            return None
        last = self._last_alert.get(look.subject_id)
        if last is not None and now - last < self.config.cooldown_s:
            state.alerted.add(look.subject_id)  # counted as seen again, not re-alerted
            return None
        state.alerted.add(look.subject_id)
        self._last_alert[look.subject_id] = now
        return AlertCandidate(track_id, look.subject_id, max(scores), len(scores))

    def end_track(self, track_id: int) -> None:
        """Forget a track's match history (called when the tracker drops the track)."""
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        """Forget everything (watchlist swapped or revoked, deployment ended)."""
        self._tracks.clear()
        self._last_alert.clear()
