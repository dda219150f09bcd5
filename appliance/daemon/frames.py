"""The hot path: one frame in, alerts out. No I/O here but the alert callback.

For each frame: detect and gate every face, follow faces across frames as tracks, embed a track only at its
best few looks, match each look against the watchlist, and let the per-track rule decide on an alert. A face
that does not match leaves nothing behind: its embedding lives in the track, in memory, until the track ends.
Outside a deployment (`matching_enabled()` false) nothing is embedded at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from appliance.alerts.evidence import face_crop_jpeg
from appliance.alerts.rule import AlertCandidate, AlertRule, LookResult
from appliance.capture.base import Frame
from appliance.matching.service import Match, MatchService
from appliance.vision.detector import TileSchedule
from appliance.vision.pipeline import FacePipeline
from appliance.vision.tracker import FaceTracker, Track


@dataclass(frozen=True)
class AlertEvidence:
    """Everything an alert needs, handed to the events layer (which stores it before publishing)."""

    candidate: AlertCandidate  # its `looks`: how many embedded looks of the track matched the subject
    match: Match
    crop_jpeg: bytes
    frame_time: float  # wall clock of the frame whose look completed the rule (the crop's frame)
    first_seen: float | None  # wall clock of the track's first frame (None if the caller gave no times)


class Counters:
    """Counts only: never who, never a face. Thread-safe snapshot for status and reports.

    What FrameProcessor counts: `frames`, `detections`; `faces_seen` (tracks started); `looks_embedded`
    (comparisons with the watchlist); `alerts`. A track that left the view is counted by what happened to
    it: `faces_skipped_quality` (no look good enough to compare), `faces_not_embedded` (passed the quality
    gate but was never compared: too brief, or outside a deployment), nothing more if it was compared.
    A track ended because tracking restarted (a deployment started or ended, the watchlist changed, expired
    or was revoked, the daemon stopped) is counted only as `tracks_flushed`: that face did not leave, and
    if it is still in view it is seen again as a new track.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._c: Counter = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)

    def reset(self) -> None:
        with self._lock:
            self._c.clear()


class FrameProcessor:
    def __init__(
        self,
        pipeline: FacePipeline,
        tracker: FaceTracker,
        matcher: MatchService,
        rule: AlertRule,
        on_alert: Callable[[AlertEvidence], None],
        matching_enabled: Callable[[], bool] = lambda: True,
        counters: Counters | None = None,
        clock: Callable[[], float] = time.time,
        schedule: TileSchedule | None = None,
    ):
        self.pipeline = pipeline
        self.tracker = tracker
        self.matcher = matcher
        self.rule = rule
        self.on_alert = on_alert
        self.matching_enabled = matching_enabled
        self.counters = counters or Counters()
        self.clock = clock
        self.schedule = schedule  # None: every tiling pass on every frame
        self._flushing = False  # reset() in progress: the tracks ending now were cut, not gone
        self.tracker.on_expire = self._track_ended

    def process(self, frame: Frame) -> list[AlertEvidence]:
        grids = self.schedule.next(frame.width, frame.height) if self.schedule else None
        faces = self.pipeline.detect(frame.image, grids=grids)
        self.counters.add("frames")
        self.counters.add("detections", len(faces))
        before = self.tracker.tracks_started
        tracked = self.tracker.update(faces, frame.seq, frame.timestamp)
        self.counters.add("faces_seen", self.tracker.tracks_started - before)
        if not self.matching_enabled():
            return []
        alerts = []
        rgb = None
        for tf in tracked:
            if not tf.should_embed:
                continue
            if rgb is None:
                rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            self.pipeline.embed(frame.image, tf.face, rgb)
            self.counters.add("looks_embedded")
            tf.track.extra["embedded"] = True
            with self.pipeline.timings.stage("match"):
                match = self.matcher.identify(tf.face.embedding)
            # The track keeps the match result, not the embedding: nothing more is needed to decide.
            tf.record(None, (match.subject_id, match.score) if match else None)
            look = LookResult(match.subject_id, match.score) if match else LookResult(None, 0.0)
            candidate = self.rule.observe(tf.track_id, look, self.clock())
            tf.face.embedding = None
            tf.face.aligned = None
            if candidate is not None and match is not None:
                evidence = AlertEvidence(candidate, match, face_crop_jpeg(frame.image, tf.face.detection.box),
                                         frame.timestamp, tf.track.first_seen_at)
                self.counters.add("alerts")
                alerts.append(evidence)
                self.on_alert(evidence)
        return alerts

    def _track_ended(self, track: Track) -> None:
        if self._flushing:
            # Cut short, not gone: calling it "skipped" or "not compared" would inflate those counts.
            self.counters.add("tracks_flushed")
        elif not track.extra.get("embedded"):
            self.counters.add("faces_skipped_quality" if track.best_quality == 0.0 else "faces_not_embedded")
        self.rule.end_track(track.id)

    def reset(self) -> None:
        """End every track and forget all match history (deployment ended, watchlist swapped or revoked)."""
        self._flushing = True
        try:
            self.tracker.flush()
        finally:
            self._flushing = False
        self.rule.reset()
