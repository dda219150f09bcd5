"""plan_reload: what a re-read config file changes in the running daemon, and what waits for a restart."""

from __future__ import annotations

from appliance.alerts.rule import AlertRule
from appliance.config import Config
from appliance.daemon.reload import differences, plan_reload
from appliance.matching.service import MatchService
from appliance.vision.detector import FaceDetector
from appliance.vision.tracker import FaceTracker

PARTS = {"matcher": MatchService.RELOADABLE, "detector": FaceDetector.RELOADABLE,
         "tracker": FaceTracker.RELOADABLE, "alerts": AlertRule.RELOADABLE}


def test_declared_fields_are_applied_and_the_rest_needs_a_restart():
    old = Config()
    new = Config.model_validate({"matcher": {"threshold": 0.7, "backend": "faiss", "top_k": 3},
                                 "detector": {"score_threshold": 0.6, "tiles": [1, 2]},
                                 "tracker": {"max_looks": 5}, "capture": {"fps": 15.0}})
    plan = plan_reload(old, new, PARTS)
    assert sorted(plan.applied) == ["detector.score_threshold", "matcher.threshold", "matcher.top_k",
                                    "tracker.max_looks"]
    assert sorted(plan.needs_restart) == ["capture.fps", "detector.tiles", "matcher.backend"]
    tiles = plan.needs_restart["detector.tiles"]
    assert (tiles.running, tiles.file) == ("auto", [1, 2])
    # What runs now: the applied settings from the file, the others as they were.
    run = plan.config
    assert (run.matcher.threshold, run.matcher.top_k, run.matcher.backend) == (0.7, 3, "numpy")
    assert (run.detector.score_threshold, run.detector.tiles) == (0.6, "auto")
    assert run.tracker.max_looks == 5 and run.capture.fps == old.capture.fps
    assert plan.applied_sections() == ["detector", "matcher", "tracker"]
    assert "capture.fps, detector.tiles, matcher.backend" in plan.restart_warning()
    # The next reload of the same file applies nothing more and still says what waits for a restart.
    again = plan_reload(run, new, PARTS)
    assert again.applied == {} and sorted(again.needs_restart) == sorted(plan.needs_restart)


def test_no_change_no_warning():
    plan = plan_reload(Config(), Config(), PARTS)
    assert plan.applied == {} and plan.needs_restart == {} and plan.restart_warning() is None
    assert differences(Config(), Config()) == {}


def test_every_declared_field_exists_in_its_section():
    config = Config()
    for section, fields in PARTS.items():
        assert fields <= set(type(getattr(config, section)).model_fields), section
