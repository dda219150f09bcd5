"""Tracker: one id per person across frames, embedded at its best few looks, forgotten when it ends."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.config import TrackerConfig
from appliance.vision.tracker import FaceTracker, greedy_match, iou_matrix
from appliance.vision.types import Detection, Face, QualityVerdict


def face(x: float, y: float, size: float = 60.0, iod: float = 30.0, ok: bool = True, sharp: float = 100.0) -> Face:
    box = np.array([x, y, x + size, y + size], np.float32)
    kps = np.array([[x + 15, y + 20], [x + 15 + iod, y + 20], [x + 30, y + 35], [x + 30, y + 48],
                    [x, y + 22], [x + size, y + 22]], np.float32)
    verdict = QualityVerdict(ok=ok, reason="ok" if ok else "blurred", interocular_px=iod, sharpness=sharp,
                             yaw_deg=0.0, pitch_deg=0.0, score=0.9)
    return Face(detection=Detection(box=box, score=0.9, keypoints=kps), quality=verdict)


def test_iou_matrix_and_greedy_match():
    a = np.array([[0, 0, 10, 10], [20, 0, 30, 10]])
    b = np.array([[20, 0, 30, 10], [0, 0, 10, 5], [100, 100, 110, 110]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 1] == pytest.approx(0.5) and iou[1, 0] == pytest.approx(1.0) and iou[:, 2].max() == 0
    assert sorted(greedy_match(iou, 0.3)) == [(0, 1), (1, 0)]
    assert greedy_match(iou, 0.6) == [(1, 0)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def test_a_face_that_moves_keeps_its_track():
    tracker = FaceTracker(TrackerConfig())
    ids = {tracker.update([face(100 + 8 * i, 200)], i)[0].track_id for i in range(20)}
    assert len(ids) == 1


@pytest.mark.parametrize("occluded", [False, True])
def test_two_people_crossing_keep_their_ids(occluded):
    # A walks right, B walks left, 12 px apart vertically, 20 px per frame: at the crossing their boxes
    # overlap more with each other's last position than with their own. With `occluded`, B is hidden
    # behind A for 3 frames at the crossing, as on a street.
    tracker = FaceTracker(TrackerConfig(iou_match=0.3, max_missed_frames=5))
    a_ids, b_ids = set(), set()
    for i in range(30):
        ax, bx = 50 + 20 * i, 507 - 20 * i
        faces = [face(ax, 100)]
        if not (occluded and abs(ax - bx) < 40):
            faces.append(face(bx, 112))
        tracked = tracker.update(faces, i)
        a_ids.add(tracked[0].track_id)
        if len(tracked) == 2:
            b_ids.add(tracked[1].track_id)
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


def test_without_prediction_the_crossing_would_swap_ids():
    # The same crossing matched on last boxes only confuses the two: what makes the test above meaningful.
    boxes_a = [np.array([50 + 20 * i, 100, 110 + 20 * i, 160], float) for i in range(30)]
    boxes_b = [np.array([507 - 20 * i, 112, 567 - 20 * i, 172], float) for i in range(30)]
    swapped = False
    for i in range(1, 30):
        iou = iou_matrix(np.stack([boxes_a[i - 1], boxes_b[i - 1]]), np.stack([boxes_a[i], boxes_b[i]]))
        if (0, 1) in greedy_match(iou, 0.3):
            swapped = True
    assert swapped


def test_a_track_dies_after_max_missed_and_a_new_one_starts():
    tracker = FaceTracker(TrackerConfig(max_missed_frames=3))
    first = tracker.update([face(100, 100)], 0)[0].track_id
    for seq in range(1, 4):  # unseen for 3 updates: still alive
        assert tracker.update([], seq) == []
        assert tracker.pop_expired() == []
    assert tracker.update([face(100, 100)], 4)[0].track_id == first  # back in time
    for seq in range(5, 9):  # unseen for 4 updates: gone
        tracker.update([], seq)
    ended = tracker.pop_expired()
    assert [t.id for t in ended] == [first] and ended[0].hits == 2
    assert tracker.active == []
    assert tracker.update([face(100, 100)], 9)[0].track_id != first


def test_embed_count_never_exceeds_max_looks():
    tracker = FaceTracker(TrackerConfig(max_looks=3, min_improvement=1.05))
    embeds = 0
    for i in range(40):  # the face grows every frame, so every look beats the last
        tracked = tracker.update([face(100, 100, size=60 + i, iod=20 + i)], i)[0]
        embeds += tracked.should_embed
    track = tracker.active[0]
    assert embeds == 3 == track.embeds == len(track.looks)


def test_first_ok_look_is_embedded_and_a_worse_one_is_not():
    tracker = FaceTracker(TrackerConfig(max_looks=5, min_improvement=1.15))
    assert not tracker.update([face(100, 100, iod=30, ok=False)], 0)[0].should_embed  # gate failed
    assert tracker.update([face(101, 100, iod=30)], 1)[0].should_embed  # first ok look
    assert not tracker.update([face(102, 100, iod=25)], 2)[0].should_embed  # worse
    assert not tracker.update([face(103, 100, iod=32)], 3)[0].should_embed  # better, but < 15 % better
    assert tracker.update([face(104, 100, iod=36)], 4)[0].should_embed  # 20 % better
    assert not tracker.update([face(105, 100, iod=36)], 5)[0].should_embed  # equal to the best
    assert [look.frame_seq for look in tracker.active[0].looks] == [1, 4]


def test_faces_get_their_track_id_and_looks_keep_embeddings_until_forgotten():
    ended = []
    tracker = FaceTracker(TrackerConfig(max_missed_frames=1), on_expire=lambda t: ended.append(
        (t.id, len(t.embeddings), t.looks[0].result)))
    f = face(10, 10)
    tracked = tracker.update([f], 0)[0]
    assert f.track_id == tracked.track_id
    tracked.record(np.ones(128, np.float32) / np.sqrt(128), result=("subject-7", 0.71))
    track = tracked.track
    tracker.update([], 1)
    tracker.update([], 2)
    assert ended == [(tracked.track_id, 1, ("subject-7", 0.71))]  # the callback saw the looks
    assert track.looks == [] and track.embeddings == []  # then they were forgotten
    assert tracker.active == [] and tracker.pop_expired() == []


def test_record_on_a_face_not_chosen_for_embedding_is_refused():
    tracker = FaceTracker()
    tracked = tracker.update([face(10, 10, ok=False)], 0)[0]
    with pytest.raises(ValueError):
        tracked.record(np.zeros(128, np.float32))


def test_flush_ends_every_track():
    tracker = FaceTracker()
    tracker.update([face(10, 10), face(300, 10)], 0)
    assert len(tracker.flush()) == 2 and tracker.active == []
    assert tracker.tracks_started == tracker.tracks_ended == 2


def test_dropped_frames_between_updates_are_bridged_by_prediction():
    # The grabber hands over only the newest frame, so seq may jump by several between updates.
    tracker = FaceTracker(TrackerConfig(iou_match=0.3))
    ids = set()
    for seq in [0, 1, 2, 9, 10, 17]:  # jumps of 70 px: no overlap with where the face was last seen
        ids.add(tracker.update([face(100 + 10 * seq, 100)], seq)[0].track_id)
    assert len(ids) == 1


def test_a_small_jittery_face_stays_one_track():
    # A distant face (20 px) walking 3 px per frame; the detector's box jitters by up to 3 px.
    # Plain IoU splits this into 2-3 tracks; IoU on widened boxes keeps one.
    rng = np.random.default_rng(0)
    tracker = FaceTracker(TrackerConfig(iou_match=0.3))
    ids = set()
    for i in range(60):
        jx, jy, js = rng.uniform(-3, 3, 3)
        ids.add(tracker.update([face(300 + 3 * i + jx, 200 + jy, size=20 + js, iod=9)], i)[0].track_id)
    assert len(ids) == 1


def test_first_seen_at_is_the_wall_clock_of_the_tracks_first_frame():
    tracker = FaceTracker(TrackerConfig())
    first = tracker.update([face(100, 100)], 0, frame_time=1000.0)[0].track
    later = tracker.update([face(102, 100), face(400, 100)], 1, frame_time=1000.5)
    assert later[0].track is first and first.first_seen_at == 1000.0  # not moved on by later frames
    assert later[1].track.first_seen_at == 1000.5
    assert tracker.update([face(104, 100)], 2)[0].track.first_seen_at == 1000.0
    assert FaceTracker().update([face(0, 0)], 0)[0].track.first_seen_at is None  # no time given, none made up
