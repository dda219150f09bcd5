"""The safeguards of docs/safeguards.md re-proved on the running daemon (`Appliance`: real models, a real
SQLCipher watchlist and events database, the frame loop over a looping folder of LFW faces), not on the
component that implements them:

- no face is embedded outside a deployment, and faces are inside one;
- the deployment records the exact watchlist, threshold and model, and is reported (outbox) at start and end;
- it ends at its planned end by itself: matching stops, the end is audited and queued, the list is wiped;
- the retention purge runs in the daemon: an old crop goes, a held one and a fresh one stay, the purge is audited.

(The threshold floor on the running daemon: tests/integration/test_daemon_reload.py; forged, unsigned and
replayed commands: tests/integration/test_commands_daemon.py.)
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta

import pytest
from accountability_helpers import open_events, provision_device

from appliance.audit.chain import iter_entries
from appliance.config import load_config
from appliance.daemon.service import Appliance
from appliance.deployments.record import DeploymentRequest
from appliance.events.models import Alert
from appliance.retention.purge import set_legal_hold
from appliance.timeutil import iso_ms, utcnow

PLANNED_S = 20  # the deployment's planned length: long enough to embed some looks, short enough for a test
JPEG = b"\xff\xd8\xff\xe0" + b"x" * 2000 + b"\xff\xd9"


def _camera(tmp_path, lfw_dir):
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, name in enumerate(sorted(p.name for p in lfw_dir.iterdir())[:10]):
        shutil.copy(sorted((lfw_dir / name).glob("*.jpg"))[0], camera / f"{i:03d}.jpg")
    return camera


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def daemon_at(tmp_path, lfw_dir):
    apps = []

    def start(seed=None, **config_extra) -> Appliance:
        _, cfg, _ = provision_device(tmp_path, **config_extra)
        if seed is not None:
            seed(tmp_path / "data")  # what the van held before this start
        camera = _camera(tmp_path, lfw_dir)
        cfg.write_text(cfg.read_text() + f'[capture]\nsource = "{camera}"\nloop = true\nfps = 10.0\n')
        app = Appliance(load_config(cfg), cfg, with_mqtt=False, with_console=False)
        apps.append(app)
        app.start()
        return app

    yield start
    for app in apps:
        app.stop()


def test_no_embedding_outside_a_deployment_and_the_planned_end_stops_and_wipes(daemon_at):
    app = daemon_at(deployment={"wipe_watchlist_on_end": True})
    looks = lambda: app.counters.snapshot().get("looks_embedded", 0)  # noqa: E731

    # Outside a deployment: faces are detected and tracked, but none is embedded.
    _wait(lambda: app.counters.snapshot().get("detections", 0) >= 20, 60, "faces to be detected")
    time.sleep(1.0)
    assert looks() == 0 and not app.matching_enabled()

    req = DeploymentRequest(authorised_by="PC-1234", purpose="Daemon-level safeguard test",
                            location_text="Replay", dpia_ref="DPIA-TEST-1",
                            planned_end=utcnow() + timedelta(seconds=PLANNED_S))
    record = app.safeguards.deployments.start(req, source="console")
    # The record names the exact list, threshold and model the daemon runs with.
    meta = app.watchlist.meta()
    assert (record["watchlist"]["id"], record["watchlist"]["sha256"]) == (meta["watchlist_id"],
                                                                          meta["watchlist_sha256"])
    assert record["threshold"] == app.threshold and record["model"]["id"] == app.pipeline.model_id
    _wait(lambda: looks() > 0, PLANNED_S, "a look to be embedded inside the deployment")

    # The planned end passes: the gate closes at once, the daemon writes the end by itself within its check.
    _wait(lambda: not app.matching_enabled(), PLANNED_S + 2, "the gate to close at the planned end")
    _wait(lambda: app.console_status()["deployment"] is None and app.watchlist.meta() is None, 15,
          "the daemon to end the deployment and wipe the list")
    assert app.matcher.gallery.n_subjects == 0
    time.sleep(0.5)
    before = looks()
    time.sleep(2.0)
    assert looks() == before, "faces are still embedded after the planned end"

    kinds = [e.kind for e in iter_entries(app.events.db)]
    assert kinds.count("deployment.started") == 1 and kinds.count("deployment.ended") == 1
    assert kinds.index("deployment.ended") < kinds.index("watchlist.erased")
    ended = next(e for e in iter_entries(app.events.db) if e.kind == "deployment.ended")
    assert ended.actor == "system"
    outbox = [json.loads(r[0]) for r in app.events.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = 'deployments' ORDER BY id")]
    assert [p["event"] for p in outbox] == ["started", "ended"]
    assert outbox[-1]["deployment"]["end_reason"] == "planned_end"
    assert app.safeguards.audit.verify().ok


def test_the_running_daemon_purges_old_crops_and_keeps_held_and_fresh_ones(daemon_at):
    alerts = {name: Alert(device_id="van-01", subject_id="S-1", category="wanted", score=0.7, threshold=0.6,
                          track_id=1, model_id="mobilefacenet-int8", watchlist_id="w", watchlist_version=1,
                          crop_jpeg=JPEG, created_at=iso_ms(utcnow() - timedelta(days=days)))
              for name, days in (("old", 40), ("held", 45), ("fresh", 3))}

    def seed(data):
        store, audit = open_events(data)
        for a in alerts.values():
            store.add_alert(a)
        set_legal_hold(store, audit, alerts["held"].event_id, officer="PC-2", reason="Case 01/2345")
        store.close()

    app = daemon_at(seed)  # the default retention: crops 31 days
    _wait(lambda: app.events.crop(alerts["old"].event_id) is None, 30, "the daemon's purge")
    assert app.events.crop(alerts["held"].event_id) == JPEG and app.events.crop(alerts["fresh"].event_id) == JPEG
    purges = [e for e in iter_entries(app.events.db) if e.kind == "purge"]
    assert len(purges) == 1 and purges[0].data["crops_purged"] == 1 and purges[0].data["crops_held"] == 1
    assert app.safeguards.audit.verify().ok
