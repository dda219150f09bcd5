"""FrameProcessor's own logic with a scripted detector and matcher (the real tracker, rule and counters):
honest counters when tracking restarts, and the times an alert carries (its frame, its track's first frame)."""

from __future__ import annotations

import numpy as np

from appliance.alerts.rule import AlertRule
from appliance.capture.base import Frame
from appliance.config import AlertConfig, TrackerConfig
from appliance.daemon.frames import FrameProcessor
from appliance.matching.service import Match
from appliance.vision.pipeline import StageTimings
from appliance.vision.tracker import FaceTracker
from appliance.vision.types import Detection, Face, QualityVerdict

T0 = 1_790_000_000.0  # a wall-clock time, seconds
IMAGE = np.zeros((480, 640, 3), np.uint8)


def face(x: float, ok: bool = True, sharp: float = 100.0) -> Face:
    box = np.array([x, 100, x + 60, 160], np.float32)
    kps = np.zeros((6, 2), np.float32)
    verdict = QualityVerdict(ok=ok, reason="ok" if ok else "blurred", interocular_px=30.0, sharpness=sharp,
                             yaw_deg=0.0, pitch_deg=0.0, score=0.9)
    return Face(detection=Detection(box=box, score=0.9, keypoints=kps), quality=verdict)


class ScriptedPipeline:
    """detect() returns the faces scripted for the frame's seq; embed() marks the face by its x position."""

    def __init__(self, script: dict[int, list[tuple]]):
        self.script = script
        self.timings = StageTimings()
        self._seq = 0

    def detect(self, image, grids=None) -> list[Face]:
        faces = [face(*args) for args in self.script.get(self._seq, [])]
        self._seq += 1
        return faces

    def embed(self, image, f: Face, rgb=None) -> Face:
        f.embedding = np.array([float(f.detection.box[0])], np.float32)
        return f


class ScriptedMatcher:
    """Matches a look to the subject scripted for the face's x position (None: no match)."""

    def __init__(self, subjects: dict[float, str | None]):
        self.subjects = subjects

    def identify(self, embedding) -> Match | None:
        subject = self.subjects.get(float(embedding[0]))
        if subject is None:
            return None
        return Match(subject_id=subject, score=0.7, threshold=0.6, candidates=(), metadata={}, watchlist_id="wl",
                     watchlist_version=1, watchlist_hash=None, backend="scripted")


def processor(script, subjects=None, *, enabled=True, min_looks=1, max_missed=3):
    alerts = []
    proc = FrameProcessor(ScriptedPipeline(script), FaceTracker(TrackerConfig(max_missed_frames=max_missed)),
                          ScriptedMatcher(subjects or {}), AlertRule(AlertConfig(min_looks=min_looks, cooldown_s=0)),
                          alerts.append, matching_enabled=lambda: enabled, clock=lambda: T0)
    return proc, alerts


def run(proc, n_frames: int, start: int = 0) -> None:
    for seq in range(start, start + n_frames):
        proc.process(Frame(image=IMAGE, seq=seq, timestamp=T0 + seq * 0.5, monotonic=seq * 0.5, source="test"))


def test_a_reset_does_not_count_the_faces_still_in_view_as_skipped_or_not_compared():
    # Outside a deployment (nothing embedded): one good face and one blurred face, both still in view.
    proc, _ = processor({seq: [(100,), (400, False)] for seq in range(4)}, enabled=False)
    run(proc, 4)
    proc.reset()
    c = proc.counters.snapshot()
    assert c["faces_seen"] == 2 and c["tracks_flushed"] == 2
    assert c.get("faces_not_embedded", 0) == 0 and c.get("faces_skipped_quality", 0) == 0, c


def test_faces_that_leave_are_still_counted_by_why_they_were_not_compared():
    # Seen in frames 0-2, then gone for longer than max_missed_frames: they left, they were not cut.
    proc, _ = processor({seq: [(100,), (400, False)] for seq in range(3)}, enabled=False, max_missed=2)
    run(proc, 7)
    proc.reset()
    c = proc.counters.snapshot()
    assert c["faces_not_embedded"] == 1 and c["faces_skipped_quality"] == 1 and c.get("tracks_flushed", 0) == 0, c


def test_a_compared_face_cut_by_a_reset_counts_only_as_flushed():
    proc, _ = processor({seq: [(100,)] for seq in range(3)}, {100.0: None})
    run(proc, 3)
    proc.reset()
    c = proc.counters.snapshot()
    assert c["looks_embedded"] == 1 and c["tracks_flushed"] == 1 and c.get("faces_not_embedded", 0) == 0, c


def test_alert_carries_its_frame_time_its_tracks_first_frame_and_the_matching_looks():
    # Person A from frame 0: a first look, then a sharper second look at frame 2 completes the 2-look rule.
    # Person B comes into view at frame 1 and completes the rule at frame 3.
    script = {0: [(100,)], 1: [(100,), (400,)], 2: [(100, True, 400.0), (400,)], 3: [(100,), (400, True, 400.0)]}
    proc, alerts = processor(script, {100.0: "S-A", 400.0: "S-B"}, min_looks=2)
    run(proc, 4)
    by_subject = {a.candidate.subject_id: a for a in alerts}
    assert set(by_subject) == {"S-A", "S-B"}
    a, b = by_subject["S-A"], by_subject["S-B"]
    assert (a.first_seen, a.frame_time, a.candidate.looks) == (T0, T0 + 1.0, 2)
    assert (b.first_seen, b.frame_time, b.candidate.looks) == (T0 + 0.5, T0 + 1.5, 2)
