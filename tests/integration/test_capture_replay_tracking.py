"""Replay a make_clip video through the real detector and the tracker, against ground truth.

make_clip knows where every photo pixel is in every frame, so each detection maps back to a point in its
photo: detections of one person map to one point. That lets this test check what matters on a street:
one track per person (not several), never two people in one track, never a track across a cut, and a
track embedded at a few good looks rather than every frame.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from appliance.capture import open_source
from appliance.config import TrackerConfig
from appliance.devtools.make_clip import make_clip
from appliance.vision.tracker import FaceTracker

PORTRAITS = ("catherine_coleman", "christopher_ferguson", "gregory_wiseman", "kate_rubins")
FRAMES_PER_PHOTO = 15


@pytest.fixture(scope="module")
def replay(tmp_path_factory, nasa_dir, crowd_dir, pipeline):
    photos = [nasa_dir / name / "portrait.jpg" for name in PORTRAITS] + [crowd_dir / "1.jpg"]
    out = tmp_path_factory.mktemp("replay") / "street.mp4"
    info = make_clip(photos, out, size=(960, 540), seconds=len(photos) * FRAMES_PER_PHOTO / 15, fps=15, seed=5)
    crowd = info.segments[-1]
    assert min(crowd.zoom_start, crowd.zoom_end) > 0.9, "seed 5 should show the crowd close enough to detect"
    config = TrackerConfig()
    tracker = FaceTracker(config)
    seen = defaultdict(list)  # track id -> [(frame, photo point, photo face width, segment)]
    ok_faces = embedded = 0
    with open_source(str(out), pace=False) as camera:
        while (frame := camera.read()) is not None:
            faces = pipeline.detect(frame.image)
            ok_faces += sum(1 for f in faces if f.quality.ok)
            segment = info.segment_at(frame.seq)
            scale, _ = segment.view(frame.seq)
            for tracked in tracker.update(faces, frame.seq):
                assert tracked.face.track_id == tracked.track_id
                if tracked.should_embed:
                    pipeline.embed(frame.image, tracked.face)
                    tracked.record(tracked.face.embedding)
                    embedded += 1
                box = tracked.face.detection.box
                centre = info.to_photo(frame.seq, [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                seen[tracked.track_id].append((frame.seq, centre, (box[2] - box[0]) / scale, segment.image))
    ended = {t.id: t for t in tracker.flush()}
    return info, config, seen, ended, ok_faces, embedded


def _pure(observations) -> bool:
    centres = np.array([o[1] for o in observations])
    width = float(np.median([o[2] for o in observations]))
    return bool((np.linalg.norm(centres - np.median(centres, axis=0), axis=1) <= 0.5 * width).all())


def test_each_portrait_is_one_track_for_its_whole_segment(replay):
    info, _, seen, _, _, _ = replay
    for segment in info.segments[: len(PORTRAITS)]:
        tracks = {tid: obs for tid, obs in seen.items() if obs[0][3] == segment.image}
        longest = max(tracks.values(), key=len)
        assert len(longest) >= 0.8 * FRAMES_PER_PHOTO, (segment.image, {t: len(o) for t, o in tracks.items()})
        assert _pure(longest)


def test_no_track_mixes_people_or_crosses_a_cut(replay):
    _, _, seen, _, _, _ = replay
    assert all(len({o[3] for o in obs}) == 1 for obs in seen.values())
    lasting = [obs for obs in seen.values() if len(obs) >= 3]
    impure = [obs for obs in lasting if not _pure(obs)]
    assert len(impure) <= max(1, 0.05 * len(lasting))


def test_the_crowd_is_not_fragmented(replay):
    info, _, seen, _, _, _ = replay
    crowd = info.segments[-1]
    tracks = [obs for obs in seen.values() if obs[0][3] == crowd.image]
    per_frame = defaultdict(int)
    for obs in tracks:
        for o in obs:
            per_frame[o[0]] += 1
    people = max(per_frame.values())  # at least this many people are in view at once
    assert people >= 10
    assert sum(1 for obs in tracks if len(obs) >= 3) <= 1.3 * people


def test_tracks_are_embedded_at_a_few_looks_not_every_frame(replay):
    _, config, _, ended, ok_faces, embedded = replay
    assert all(t.embeds <= config.max_looks for t in ended.values())
    assert all(len(t.embeddings) == t.embeds for t in ended.values())  # flush() hands them over with looks
    assert 0 < embedded <= 0.5 * ok_faces
