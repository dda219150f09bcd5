"""Issue 12: a truncated audit log is detectable. The van publishes its signed chain head with its status (real
TLS broker); the control-room receiver keeps the highest head per van (encrypted store); after the log's tail, or
all of it, is deleted, `appliance audit verify` still passes (the chain alone cannot show a cut at the end) but
`appliance audit verify-export --heads` says the log is shorter than a head the control room has seen."""

from __future__ import annotations

import time

import pytest
from accountability_helpers import open_events
from test_audit_cli import run, tamper  # noqa: F401 - the `run` fixture: a data dir after a short deployment

from appliance.cli.main import main
from appliance.control.receiver import ControlReceiver
from appliance.control.store import ControlStore, open_control_db
from appliance.events.publisher import OutboxPublisher
from appliance.events.status import StatusReporter
from appliance.storage import KeyFileProvider
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection


@pytest.fixture
def heads(run, tmp_path, tls_broker):  # noqa: F811
    """The van publishes its head once; the control room stores it. Returns (config, data, n, control db)."""
    cfg, data, n = run
    db, keys = tmp_path / "control.db", tmp_path / "control.db.keys"
    control = ControlStore(open_control_db(db, KeyFileProvider(keys)))
    rx = ControlReceiver(tls_broker.settings("control-room", "cr-heads"), control, out=lambda _: None).start()
    store, audit = open_events(data)
    pub = OutboxPublisher(store, tls_broker.settings("van-01", "van-01"), "van-01",
                          status=StatusReporter("van-01", store), receipts=False,
                          audit_head=audit.head_payload).start()
    try:
        deadline = time.monotonic() + 15
        while (control.audit_head("van-01") or {}).get("seq") != n and time.monotonic() < deadline:
            time.sleep(0.1)
        assert control.audit_head("van-01")["seq"] == n, control.audit_head("van-01")
    finally:
        pub.stop()
        rx.stop()
        control.close()
        store.close()
        # The head is retained on the broker: clear it, so the next test's receiver does not get this one.
        van = MqttConnection(tls_broker.settings("van-01", "van-01"), clean_start=True).connect()
        van.publish(topics.audit_head("van-01"), b"", qos=1, retain=True).wait(10)
        van.close()
    return cfg, data, n, db


def export_and_check(cfg, data, tmp_path, db, capsys) -> tuple[int, str]:
    out = tmp_path / "export.jsonl"
    assert main(["audit", "export", "--config", str(cfg), "--from", "2000-01-01", "--out", str(out)]) == 0
    capsys.readouterr()
    rc = main(["audit", "verify-export", str(out), "--public-key", str(data / "keys" / "device.ed25519.pub"),
               "--device", "van-01", "--heads", str(db)])
    return rc, capsys.readouterr().out


def test_an_intact_log_reaches_the_head(heads, tmp_path, capsys):
    cfg, data, n, db = heads
    rc, out = export_and_check(cfg, data, tmp_path, db, capsys)
    assert rc == 0 and f"export OK: {n} entries" in out, out


@pytest.mark.parametrize("cut", ["tail", "all"])
def test_a_cut_log_is_shorter_than_the_head_seen(heads, tmp_path, capsys, cut):
    cfg, data, n, db = heads
    tamper(data, "DELETE FROM audit WHERE seq > ?", 3 if cut == "tail" else 0)
    assert main(["audit", "verify", "--config", str(cfg)]) == 0  # the chain alone cannot tell
    capsys.readouterr()
    rc, out = export_and_check(cfg, data, tmp_path, db, capsys)
    assert rc == 1 and "shorter than a head the control room has seen" in out and f"seq {n}" in out, out
