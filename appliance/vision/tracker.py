"""Tracker: one track per person across frames, embedded at its best few looks, not every frame.

Association is greedy on IoU (highest first) between each track's *predicted* box (constant velocity
per frame number) and this frame's detections. Prediction is what keeps two people who walk past each
other on their own tracks: their last boxes overlap at the crossing, their predicted boxes do not.
The IoU is taken on boxes widened by ASSOCIATION_MARGIN of their size on each side: a 20 px face whose
box jitters by a few pixels would otherwise fall below `iou_match` and split into several tracks.
Measured on a 40 s make_clip replay (6 portraits, 4 crowds shrinking to small faces; ~119 people by
ground truth): plain IoU made 200 tracks of which 11 mixed two people; widened by 0.3, 147 and 4
(0.5: 139 tracks, but one crossed a cut between photos).

Each track decides which of its looks are worth an embedding: only faces the quality gate passed; the
first such look at once (so a face is matched as soon as it is seen well); a later one only if its
quality beats the best embedded so far by `min_improvement`; never more than `max_looks`.

A track's looks (embeddings and match results) live in memory only. When a track has been unseen for
`max_missed_frames` updates it ends: it is handed to `on_expire` (or queued for `pop_expired()`) for a
final decision, then forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.config import TrackerConfig
from appliance.vision.types import Face

VELOCITY_SMOOTHING = 0.5  # weight of the newest motion in the velocity estimate
ASSOCIATION_MARGIN = 0.3  # boxes are widened by this share of their width/height per side for matching
MAX_QUEUED_EXPIRED = 1024  # ended tracks nobody popped are forgotten beyond this


@dataclass
class Look:
    """One embedded look of a track. `result` is whatever the matcher said about it (opaque here)."""

    frame_seq: int
    quality: float
    embedding: np.ndarray | None = None
    result: Any = None


@dataclass(eq=False)
class Track:
    id: int
    box: np.ndarray  # last seen [x1, y1, x2, y2]
    first_seq: int
    last_seq: int
    first_seen_at: float | None = None  # wall clock (time.time()) of its first frame, when the caller gave one
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float64))  # box change per frame seq
    hits: int = 1  # frames it was seen in
    missed: int = 0  # consecutive updates it was not seen in
    embeds: int = 0  # looks chosen for embedding (≤ max_looks)
    best_embedded_quality: float = 0.0
    best_quality: float = 0.0  # best quality seen, embedded or not (for reports)
    looks: list[Look] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # per-track state of later stages (e.g. alert raised)

    def predict(self, seq: int) -> np.ndarray:
        return self.box + self.velocity * max(0, seq - self.last_seq)

    @property
    def embeddings(self) -> list[np.ndarray]:
        return [look.embedding for look in self.looks if look.embedding is not None]

    def forget(self) -> None:
        """Drop everything biometric this track held (its embeddings and match results)."""
        self.looks.clear()
        self.extra.clear()


@dataclass
class TrackedFace:
    """A face of this frame, with its track and whether it should be embedded now."""

    face: Face
    track: Track
    should_embed: bool
    look: Look | None = None  # the look slot reserved for this face when should_embed

    @property
    def track_id(self) -> int:
        return self.track.id

    def record(self, embedding: np.ndarray | None, result: Any = None) -> None:
        """Keep this look's embedding (and match result) on the track, in memory."""
        if self.look is None:
            raise ValueError("record() is only for faces the tracker chose to embed")
        self.look.embedding = embedding
        self.look.result = result


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), as (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def widen(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Boxes (N, 4) grown by `margin` of their width and height on every side."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    dx = (b[:, 2] - b[:, 0]) * margin
    dy = (b[:, 3] - b[:, 1]) * margin
    return np.stack([b[:, 0] - dx, b[:, 1] - dy, b[:, 2] + dx, b[:, 3] + dy], axis=1)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (row, col) pairs, highest IoU first, each at least `threshold`."""
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


class FaceTracker:
    """Call `update()` once per processed frame, with all the faces found in it (quality-gated or not)."""

    RELOADABLE = frozenset(TrackerConfig.model_fields)  # every field is read per frame

    def update_config(self, config: TrackerConfig) -> None:
        """Call between frames, from the thread that calls update()."""
        self.config = config

    def __init__(self, config: TrackerConfig | None = None, on_expire: Callable[[Track], None] | None = None):
        self.config = config or TrackerConfig()
        self.on_expire = on_expire
        self._tracks: list[Track] = []
        self._expired: deque[Track] = deque(maxlen=MAX_QUEUED_EXPIRED)
        self._next_id = 1
        self.tracks_started = 0
        self.tracks_ended = 0
        self.looks_embedded = 0

    @property
    def active(self) -> list[Track]:
        return list(self._tracks)

    def update(self, faces: Sequence[Face], frame_seq: int, frame_time: float | None = None) -> list[TrackedFace]:
        """Associate this frame's faces with tracks; returns one TrackedFace per face, in input order.
        `frame_time` (the frame's wall clock) becomes `first_seen_at` of the tracks this frame starts."""
        boxes = np.array([np.asarray(f.detection.box, np.float64) for f in faces]).reshape(-1, 4)
        predicted = np.array([t.predict(frame_seq) for t in self._tracks]).reshape(-1, 4)
        iou = iou_matrix(widen(predicted, ASSOCIATION_MARGIN), widen(boxes, ASSOCIATION_MARGIN))
        pairs = greedy_match(iou, self.config.iou_match)

        assigned: list[Track | None] = [None] * len(faces)
        seen: set[int] = set()
        for ti, fi in pairs:
            track = self._tracks[ti]
            self._follow(track, boxes[fi], frame_seq)
            assigned[fi] = track
            seen.add(ti)

        ended = []
        for ti, track in enumerate(self._tracks):
            if ti not in seen:
                track.missed += 1
                if track.missed > self.config.max_missed_frames:
                    ended.append(track)
        for track in ended:
            self._tracks.remove(track)
            self._end(track)

        result = []
        for fi, face in enumerate(faces):
            track = assigned[fi]
            if track is None:
                track = self._start(boxes[fi], frame_seq, frame_time)
            face.track_id = track.id
            result.append(self._decide(face, track, frame_seq))
        return result

    def pop_expired(self) -> list[Track]:
        """Tracks that ended since the last call (only when no on_expire callback is set)."""
        out = list(self._expired)
        self._expired.clear()
        return out

    def flush(self) -> list[Track]:
        """End every track now (end of stream, deployment ended); returns them if no callback is set."""
        tracks, self._tracks = self._tracks, []
        for track in tracks:
            self._end(track)
        return self.pop_expired()

    # -- internals -------------------------------------------------------------------------------------

    def _start(self, box: np.ndarray, seq: int, frame_time: float | None) -> Track:
        track = Track(id=self._next_id, box=box.copy(), first_seq=seq, last_seq=seq, first_seen_at=frame_time)
        self._next_id += 1
        self.tracks_started += 1
        self._tracks.append(track)
        return track

    @staticmethod
    def _follow(track: Track, box: np.ndarray, seq: int) -> None:
        gap = max(1, seq - track.last_seq)
        motion = (box - track.box) / gap
        a = 1.0 if track.hits == 1 else VELOCITY_SMOOTHING
        track.velocity = a * motion + (1.0 - a) * track.velocity
        track.box = box.copy()
        track.last_seq = seq
        track.hits += 1
        track.missed = 0

    def _decide(self, face: Face, track: Track, seq: int) -> TrackedFace:
        verdict = face.quality
        if verdict is None or not verdict.ok:
            return TrackedFace(face, track, should_embed=False)
        quality = float(verdict.quality)
        track.best_quality = max(track.best_quality, quality)
        cfg = self.config
        if track.embeds >= cfg.max_looks:
            embed = False
        elif track.embeds == 0:
            embed = True
        else:
            embed = quality > track.best_embedded_quality * cfg.min_improvement
        if not embed:
            return TrackedFace(face, track, should_embed=False)
        track.embeds += 1
        track.best_embedded_quality = max(track.best_embedded_quality, quality)
        self.looks_embedded += 1
        look = Look(frame_seq=seq, quality=quality)
        track.looks.append(look)
        return TrackedFace(face, track, should_embed=True, look=look)

    def _end(self, track: Track) -> None:
        self.tracks_ended += 1
        if self.on_expire is None:
            self._expired.append(track)
            return
        try:
            self.on_expire(track)
        finally:
            track.forget()  # nothing biometric outlives the decision on the ended track
