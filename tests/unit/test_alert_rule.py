"""The per-track alert rule: k looks, once per track per subject, cool-down per subject."""

from appliance.alerts.rule import AlertRule, LookResult
from appliance.config import AlertConfig


def test_one_look_alerts_by_default_and_only_once_per_track():
    rule = AlertRule()
    first = rule.observe(1, LookResult("s1", 0.7), now=0)
    assert first is not None and first.subject_id == "s1" and first.looks == 1
    assert rule.observe(1, LookResult("s1", 0.9), now=1) is None


def test_k_looks_must_match_the_same_subject():
    rule = AlertRule(AlertConfig(min_looks=2, cooldown_s=0))
    assert rule.observe(1, LookResult("s1", 0.7), 0) is None
    assert rule.observe(1, LookResult("s2", 0.7), 1) is None  # a different subject does not add up
    assert rule.observe(1, LookResult(None, 0.1), 2) is None
    alert = rule.observe(1, LookResult("s1", 0.8), 3)
    assert alert is not None and alert.looks == 2 and alert.score == 0.8


def test_no_match_never_alerts():
    rule = AlertRule()
    assert all(rule.observe(1, LookResult(None, 0.5), t) is None for t in range(10))


def test_cooldown_per_subject_across_tracks():
    rule = AlertRule(AlertConfig(cooldown_s=60))
    assert rule.observe(1, LookResult("s1", 0.7), 0) is not None
    assert rule.observe(2, LookResult("s1", 0.7), 30) is None  # same person re-entering: within cool-down
    assert rule.observe(3, LookResult("s2", 0.7), 31) is not None  # another subject is unaffected
    assert rule.observe(4, LookResult("s1", 0.7), 61) is not None  # after the cool-down


def test_end_track_and_reset_forget_history():
    rule = AlertRule(AlertConfig(min_looks=2, cooldown_s=0))
    rule.observe(1, LookResult("s1", 0.7), 0)
    rule.end_track(1)
    assert rule.observe(1, LookResult("s1", 0.7), 1) is None  # history was forgotten: 1 look again
    rule.reset()
    assert rule._tracks == {} and rule._last_alert == {}
