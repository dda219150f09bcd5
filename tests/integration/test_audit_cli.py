"""`appliance audit verify|export|verify-export` on a real encrypted events database: a realistic run
(deployment, alerts, decisions, purge) verifies; altering one row makes verify name that entry; an export
verifies with the public key alone and fails when a line is changed."""

from __future__ import annotations

import json

import pytest
from accountability_helpers import Clock, manager, open_events, request

from appliance.cli.main import main
from appliance.events.models import Alert, Decision
from appliance.storage import KeyFileProvider, open_db


@pytest.fixture
def run(tmp_path):
    """A data dir after a short deployment; returns (config path, data dir, number of audit entries)."""
    data = tmp_path / "data"
    store, audit = open_events(data)
    clock = Clock()
    m = manager(store, audit, clock, counters=lambda: {"faces_seen": 40})
    dep = m.start(request(clock), source="console")
    for i in range(3):
        a = Alert(device_id="van-01", subject_id=f"S-{i}", category="wanted", score=0.7, threshold=0.61,
                  track_id=i, model_id="mobilefacenet-int8", watchlist_id="met-wanted", watchlist_version=7,
                  crop_jpeg=b"\xff\xd8\xff" + b"j" * 100, deployment_id=dep["id"])
        store.add_alert(a)
        store.add_decision(Decision(device_id="van-01", alert_id=a.event_id, officer_id="PC-1",
                                    decision=("confirm", "reject", "unsure")[i]))
    audit.record("login", "PC-1", {"ok": True})
    m.end("officer", by="PC-1")
    n = audit.head().seq
    store.close()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[device]\nid = "van-01"\ndata_dir = "{data}"\n[storage]\nkey_provider = "file"\n')
    return cfg, data, n


def tamper(data, sql, *params):
    db = open_db(data / "events.db", KeyFileProvider(data / "keys"))
    db.conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    db.conn.execute(sql, params)
    db.conn.commit()
    db.close()


def test_verify_passes_then_names_the_altered_entry(run, capsys):
    cfg, data, n = run
    assert n == 9  # started, 3 alerts, 3 decisions, a login, ended
    assert main(["audit", "verify", "--config", str(cfg)]) == 0
    assert f"OK: {n} entries" in capsys.readouterr().out
    # An officer's rejection rewritten as a confirmation: entry 5 is the second decision.
    tamper(data, "UPDATE audit SET data = replace(data, '\"reject\"', '\"confirm\"') WHERE seq = 5")
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at entry 5" in out and "altered" in out


def test_deleted_entry_is_named(run, capsys):
    cfg, data, _n = run
    tamper(data, "DELETE FROM audit WHERE seq = 3")
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    assert "BROKEN at entry 4" in capsys.readouterr().out


def test_export_verifies_with_the_public_key_only(run, tmp_path, capsys):
    cfg, data, n = run
    out = tmp_path / "export.jsonl"
    assert main(["audit", "export", "--config", str(cfg), "--from", "2000-01-01", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == n + 1 and json.loads(lines[-1])["type"] == "trailer"
    assert "jjjjjjjj" not in out.read_text() and "crop_jpeg" not in out.read_text()  # no image in the audit
    pub = data / "keys" / "device.ed25519.pub"
    assert main(["audit", "verify-export", str(out), "--public-key", str(pub), "--device", "van-01"]) == 0
    assert f"export OK: {n} entries" in capsys.readouterr().out
    # The export itself was audited, and the chain still verifies.
    assert main(["audit", "verify", "--config", str(cfg)]) == 0
    assert f"OK: {n + 1} entries" in capsys.readouterr().out

    obj = json.loads(lines[4])
    obj["actor"] = "PC-2"
    lines[4] = json.dumps(obj)
    out.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify-export", str(out), "--public-key", str(pub)]) == 1
    assert "line 5" in capsys.readouterr().out


def test_wrong_key_file_is_one_line(run, tmp_path, capsys):
    _cfg, data, _n = run
    assert main(["audit", "verify-export", str(tmp_path / "missing.jsonl"), "--public-key",
                 str(data / "keys" / "device.ed25519.pub")]) == 2
    assert "not found" in capsys.readouterr().err
