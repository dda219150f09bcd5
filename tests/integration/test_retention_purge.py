"""Retention on the real encrypted events database: old crops purged, held ones kept, records kept longer,
every purge audited and the chain still verifies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from accountability_helpers import open_events

from appliance.audit.chain import iter_entries
from appliance.errors import ApplianceError
from appliance.events.models import Alert, Decision, iso_ms
from appliance.retention.purge import clear_legal_hold, legal_holds, purge, set_legal_hold

NOW = datetime.now(timezone.utc)
JPEG = b"\xff\xd8\xff\xe0" + b"x" * 2000 + b"\xff\xd9"


def alert(days_ago: float) -> Alert:
    return Alert(device_id="van-01", subject_id="S-001", category="wanted", score=0.7, threshold=0.6,
                 track_id=1, model_id="mobilefacenet-int8", watchlist_id="w", watchlist_version=1,
                 crop_jpeg=JPEG, created_at=iso_ms(NOW - timedelta(days=days_ago)))


@pytest.fixture
def env(tmp_path):
    store, audit = open_events(tmp_path)
    yield store, audit
    store.close()


def test_crops_purged_after_the_period_unless_on_hold(env):
    store, audit = env
    old, held, fresh = alert(40), alert(45), alert(3)
    for a in (old, held, fresh):
        store.add_alert(a)
    store.add_decision(Decision(device_id="van-01", alert_id=old.event_id, officer_id="PC-1", decision="reject"))
    set_legal_hold(store, audit, held.event_id, officer="PC-2", reason="Case 01/2345, court order")
    with pytest.raises(ApplianceError, match="already on legal hold"):
        set_legal_hold(store, audit, held.event_id, officer="PC-2", reason="again")

    r = purge(store, audit, crop_days=31, records_days=2190, now=NOW)
    assert (r.crops_purged, r.crops_held, r.alerts_deleted) == (1, 1, 0)
    assert store.crop(old.event_id) is None
    assert store.crop(held.event_id) == JPEG and store.crop(fresh.event_id) == JPEG
    # The decision and the alert's record (without the image) are kept.
    assert store.decisions_for(old.event_id)[0]["decision"] == "reject"
    assert store.alert(old.event_id)["has_crop"] is False
    # Publishing the alert later sends no image.
    row = next(r for r in store.outbox_unreceived() if r["event_id"] == old.event_id)
    assert row["payload"]["crop_jpeg_b64"] is None

    entries = list(iter_entries(store.db))
    purges = [e for e in entries if e.kind == "purge"]
    assert len(purges) == 1 and purges[0].data["crops_purged"] == 1 and purges[0].data["crops_held"] == 1
    assert [e.kind for e in entries].count("legal_hold.set") == 1

    # Nothing to purge: no audit noise.
    assert not purge(store, audit, crop_days=31, records_days=2190, now=NOW).anything
    assert len([e for e in iter_entries(store.db) if e.kind == "purge"]) == 1

    clear_legal_hold(store, audit, held.event_id, officer="PC-2", reason="case closed")
    assert legal_holds(store) == []
    assert purge(store, audit, crop_days=31, records_days=2190, now=NOW).crops_purged == 1
    assert store.crop(held.event_id) is None
    assert audit.verify().ok


def test_records_go_after_the_long_period_once_sent(env):
    store, audit = env
    ancient = alert(400)
    store.add_alert(ancient)
    store.add_decision(Decision(device_id="van-01", alert_id=ancient.event_id, officer_id="PC-1",
                                decision="confirm"))
    r = purge(store, audit, crop_days=31, records_days=365, now=NOW)
    assert r.crops_purged == 1 and r.alerts_deleted == 0  # not yet sent to the control room: kept
    store.mark_sent([row["id"] for row in store.outbox()])
    r = purge(store, audit, crop_days=31, records_days=365, now=NOW)
    assert (r.alerts_deleted, r.decisions_deleted) == (1, 1)
    assert store.alert(ancient.event_id) is None
    # The audit chain keeps the alert's and the decision's entries (without images).
    kinds = [e.kind for e in iter_entries(store.db)]
    assert kinds.count("alert") == 1 and kinds.count("decision") == 1 and kinds.count("purge") == 2
    assert audit.verify().ok


def test_retention_cli(tmp_path, capsys):
    import json

    from appliance.cli.main import main

    store, _ = open_events(tmp_path / "data")
    old = alert(40)
    store.add_alert(old)
    store.close()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[device]\nid = "van-01"\ndata_dir = "{tmp_path / "data"}"\n[retention]\ncrop_days = 31\n')
    hold = ["retention", "hold", old.event_id, "--officer", "PC-2", "--reason", "Case 7", "--config", str(cfg)]
    assert main(hold) == 0
    assert main(["retention", "holds", "--config", str(cfg)]) == 0
    assert "Case 7" in capsys.readouterr().out
    assert main(["retention", "purge", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["crops_held"] == 1
    assert main(["retention", "release", old.event_id, "--officer", "PC-2", "--reason", "closed",
                 "--config", str(cfg)]) == 0
    assert main(["retention", "purge", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["crops_purged"] == 1
    assert main(["retention", "hold", "nope", "--officer", "PC-2", "--reason", "x", "--config", str(cfg)]) == 2
    assert "no alert nope" in capsys.readouterr().err
    assert main(["audit", "verify", "--config", str(cfg)]) == 0
