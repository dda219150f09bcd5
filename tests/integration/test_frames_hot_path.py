"""The hot path on a replayed clip with the real models: watchlist faces alert, others do not, and
nothing is embedded outside a deployment."""


import cv2
import pytest
from lfw_gallery import lfw_match_service

from appliance.alerts.rule import AlertRule
from appliance.capture.base import Frame
from appliance.config import load_config
from appliance.daemon.frames import FrameProcessor
from appliance.devtools.street_clip import plan_walkers, render
from appliance.vision.tracker import FaceTracker

WATCHLIST = ["Alan_Ball", "Albrecht_Mentz"]  # their 2nd photos appear in the clip
PASSERS_BY = ["Abdullah", "Adam_Sandler", "Alex_Penelas"]  # in the clip, not on the watchlist


@pytest.fixture(scope="module")
def setup(tmp_path_factory, lfw_dir, crowd_dir, pipeline):
    config = load_config()
    service = lfw_match_service(pipeline, config, lfw_dir, WATCHLIST, exclude=PASSERS_BY)
    assert set(WATCHLIST) <= set(service.gallery.subjects)
    photos = [lfw_dir / n / f"{n}_0001.jpg" for n in PASSERS_BY]
    photos[1:1] = [lfw_dir / WATCHLIST[0] / f"{WATCHLIST[0]}_0002.jpg"]
    photos += [lfw_dir / WATCHLIST[1] / f"{WATCHLIST[1]}_0002.jpg"]
    # People walk past a group photo (whose two faces are passers-by too), at 8 fps.
    images = render(cv2.imread(str(crowd_dir / "13.jpg")), plan_walkers(photos, fps=8), (960, 540))
    frames = [Frame(image=im, seq=i, timestamp=i / 8, monotonic=i / 8, source="clip") for i, im in enumerate(images)]
    assert len(frames) >= 40
    return config, service, frames


def run(setup, pipeline, enabled=True):
    config, service, frames = setup
    alerts = []
    proc = FrameProcessor(pipeline, FaceTracker(config.tracker), service, AlertRule(config.alerts), alerts.append,
                          matching_enabled=lambda: enabled)
    for frame in frames:
        proc.process(frame)
    proc.reset()
    return alerts, proc.counters.snapshot()


def test_watchlist_faces_alert_and_passers_by_do_not(setup, pipeline):
    alerts, counters = run(setup, pipeline)
    subjects = [a.candidate.subject_id for a in alerts]
    assert set(subjects) == set(WATCHLIST), subjects
    assert len(subjects) == len(set(subjects)), "a subject alerted twice within the cool-down"
    times = [f.timestamp for f in setup[2]]
    for a in alerts:
        assert a.crop_jpeg[:3] == b"\xff\xd8\xff" and a.match.score >= a.match.threshold
        # The crop's frame, the track's first frame (each a frame of the clip), and the looks the rule counted.
        assert a.frame_time in times and a.first_seen in times and a.first_seen <= a.frame_time
        assert setup[0].alerts.min_looks <= a.candidate.looks <= setup[0].tracker.max_looks
    assert counters["faces_seen"] >= 5 and counters["looks_embedded"] < counters["detections"]
    print(f"\nclip: {counters}")


def test_nothing_is_embedded_outside_a_deployment(setup, pipeline, monkeypatch):
    calls = []
    original = pipeline.embedder.embed
    monkeypatch.setattr(pipeline.embedder, "embed", lambda img: calls.append(1) or original(img))
    alerts, counters = run(setup, pipeline, enabled=False)
    assert alerts == [] and calls == [] and counters.get("looks_embedded", 0) == 0
    assert counters["faces_seen"] >= 5  # the camera still runs for the preview, counting only
