"""The control-room receiver on a real TLS broker: valid events are stored once and printed once; every
invalid payload is refused with one line and stored nowhere; an ordered stream (receipts) stores events
strictly in the van's order, reports a gap in its receipt, and never lets an invalid event block it."""

from __future__ import annotations

import base64
import json
import queue
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.control.receiver import ControlReceiver
from appliance.control.store import ControlStore, open_control_db
from appliance.events import Alert, Decision
from appliance.events.burst import synthetic_crop
from appliance.events.publisher import PROP_BASE, PROP_RECEIPTS, PROP_SEQ, PROP_STREAM
from appliance.events.schemas import payload_error
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection

DEV = "van-01"


def _alert(**kw) -> Alert:
    base = dict(device_id=DEV, subject_id="S-004", category="missing person", score=0.66, threshold=0.52,
                track_id=9, model_id="mobilefacenet-int8", watchlist_id="wl-a", watchlist_version=3,
                crop_jpeg=synthetic_crop(9))
    return Alert(**{**base, **kw})


@pytest.fixture()
def env(tls_broker, tmp_path):
    lines: list[str] = []
    store = ControlStore(open_control_db(tmp_path / "control.db"))
    rx = ControlReceiver(tls_broker.settings("control-room", f"cr-{tmp_path.name[-12:]}"), store,
                         out=lines.append, signing_key=Ed25519PrivateKey.generate()).start()
    receipts: queue.Queue = queue.Queue()
    van = MqttConnection(tls_broker.settings(DEV, f"{DEV}-raw"), clean_start=True,
                         on_message=lambda m: receipts.put(json.loads(m.payload)))
    van.connect()
    van.subscribe(topics.receipts(DEV), 1)

    def send(suffix: str, payload, props: dict | None = None) -> None:
        p = None
        if props:
            p = Properties(PacketTypes.PUBLISH)
            p.UserProperty = [(k, str(v)) for k, v in props.items()]
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        van.publish(f"{topics.PREFIX}/{DEV}/{suffix}", raw, qos=1, properties=p).wait(10)

    def settle(n_lines: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(lines) < n_lines and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # and nothing more arrives

    ns = type("Env", (), dict(lines=lines, store=store, rx=rx, send=send, settle=settle, receipts=receipts))
    yield ns
    van.close()
    rx.stop()
    store.close()


def test_valid_events_stored_once_invalid_refused_with_one_line(env):
    alert = _alert()
    good = alert.to_payload()
    decision = Decision(device_id=DEV, alert_id=alert.event_id, officer_id="PC-12", decision="confirm").to_payload()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
    invalid = [
        ("alerts", b"\xff\xfe not json", "payload is not UTF-8 JSON"),
        ("alerts", {k: v for k, v in good.items() if k != "score"}, "missing score"),
        ("alerts", {**good, "event_id": "not-a-uuid"}, "event_id"),
        ("alerts", {**good, "extra": 1}, "unknown field"),
        ("alerts", {**good, "device_id": "van-02"}, "does not match the topic's device"),
        ("alerts", {**good, "crop_jpeg_b64": png}, "crop_jpeg_b64"),
        ("alerts", decision, "expected 'lfr.alert/2' or 'lfr.alert/1'"),
        ("alerts", {**good, "schema": "lfr.alert/1"}, "unknown field"),  # version 1 has no capture times
        ("decisions", {**decision, "decision": "maybe"}, "decision"),
        ("decisions", {**decision, "note": "x" * 1001}, "note"),
        ("status", {"schema": "lfr.status/1", "device_id": DEV, "time": "2026-11-26T06:00:00Z",
                    "state": "running"}, "missing"),
        ("deployments", {"schema": "lfr.deployment/1"}, "missing"),
        ("watchlist/ack", {"schema": "watchlist_ack/1"}, "missing"),
    ]
    env.send("alerts", good)
    env.send("alerts", good)                     # redelivered: stored and printed once
    env.send("decisions", decision)
    for suffix, payload, _ in invalid:
        env.send(suffix, payload)
    env.settle(2 + len(invalid))
    events = [x for x in env.lines if " rejected " not in x]
    refused = [x for x in env.lines if " rejected " in x]
    assert len(events) == 2, env.lines
    assert f" alert {alert.event_id} subject S-004 (missing person) score 0.660 threshold 0.520" in events[0]
    assert f" decision {decision['event_id']} on alert {alert.event_id}: confirm by PC-12" in events[1]
    assert len(refused) == len(invalid), "\n".join(refused)
    for line, (suffix, _, why) in zip(refused, invalid, strict=True):
        assert f" rejected {topics.PREFIX}/{DEV}/{suffix}: " in line and why in line, (line, why)
    assert good["crop_jpeg_b64"][:40] not in "\n".join(env.lines)   # never a crop in a line
    assert env.store.count("alerts") == 1 and env.store.count("decisions") == 1
    assert env.store.count("deployments") == 0 and env.store.count("status") == 0
    assert env.store.count("rejected") == len(invalid)
    stored = env.store.db.conn.execute("SELECT crop_jpeg, payload FROM alerts").fetchone()
    assert stored[0] == alert.crop_jpeg and "crop_jpeg_b64" not in json.loads(stored[1])
    assert env.rx.stats["duplicates"] == 1
    print(f"\nchecked 2 valid events stored once (1 duplicate ignored) and {len(invalid)} invalid payloads refused")


def test_ordered_stream_gap_receipts_and_invalid_event_do_not_block(env):
    stream = "00112233aabbccdd"
    alerts = [_alert(track_id=i) for i in range(1, 6)]

    def props(seq):
        return {PROP_STREAM: stream, PROP_SEQ: seq, PROP_BASE: 0, PROP_RECEIPTS: 1}

    def receipt():
        r = env.receipts.get(timeout=10)
        assert payload_error(r, "lfr.receipt/2") is None, payload_error(r)
        assert r["stream_id"] == stream and r["device_id"] == DEV
        return r["upto"], r["gap"]

    env.send("alerts", alerts[0].to_payload(), props(1))
    assert receipt() == (1, False)
    env.send("alerts", alerts[2].to_payload(), props(3))     # 2 is missing: not stored, the van must go back
    assert receipt() == (1, True)
    env.send("alerts", alerts[1].to_payload(), props(2))
    assert receipt() == (2, False)
    env.send("alerts", alerts[2].to_payload(), props(3))
    assert receipt() == (3, False)
    env.send("alerts", alerts[1].to_payload(), props(2))     # a late duplicate: ignored, receipt repeated
    assert receipt() == (3, False)
    env.send("alerts", {**alerts[3].to_payload(), "score": 7}, props(4))  # invalid: refused, yet not a blocker
    assert receipt() == (4, False)
    env.send("alerts", alerts[4].to_payload(), props(5))
    assert receipt() == (5, False)
    env.settle(5)
    got = [a["event_id"] for a in env.store.arrivals(DEV)]
    assert got == [alerts[i].event_id for i in (0, 1, 2, 4)]
    assert [a["seq"] for a in env.store.arrivals(DEV)] == [1, 2, 3, 5]
    assert sum(" rejected " in x for x in env.lines) == 1
    print(f"\nchecked {len(got)} ordered events: a gap held back and reported, a duplicate ignored, "
          "an invalid event refused without blocking the stream")


def test_alerts_queued_before_the_upgrade_are_stored_beside_new_ones_with_their_times(env):
    """A van's outbox may still hold lfr.alert/1 payloads committed by the previous software: the receiver
    stores them, in order, next to lfr.alert/2 alerts, whose capture times and looks it keeps."""
    stream = "0a1b2c3d4e5f6a7b"
    new = _alert(track_id=2, looks=2, captured_at="2026-11-26T06:30:01.500Z", first_seen_at="2026-11-26T06:29:58.000Z")
    queued = {k: v for k, v in _alert(track_id=1, looks=1).to_payload().items()
              if k not in ("captured_at", "first_seen_at")} | {"schema": "lfr.alert/1"}
    for seq, payload in ((1, queued), (2, new.to_payload())):
        env.send("alerts", payload, {PROP_STREAM: stream, PROP_SEQ: seq, PROP_BASE: 0, PROP_RECEIPTS: 1})
    env.settle(2)
    assert not [x for x in env.lines if " rejected " in x], env.lines
    assert [a["event_id"] for a in env.store.arrivals(DEV)] == [queued["event_id"], new.event_id]
    stored = dict(env.store.db.conn.execute("SELECT event_id, payload FROM alerts").fetchall())
    old_row, new_row = json.loads(stored[queued["event_id"]]), json.loads(stored[new.event_id])
    assert old_row["schema"] == "lfr.alert/1" and "captured_at" not in old_row and old_row["looks"] == 1
    assert new_row["schema"] == "lfr.alert/2" and new_row["looks"] == 2
    assert (new_row["first_seen_at"], new_row["captured_at"]) == (new.first_seen_at, new.captured_at)
    assert env.receipts.get(timeout=10)["upto"] == 1 and env.receipts.get(timeout=10)["upto"] == 2


def test_the_two_officer_rule_applies_at_the_control_room_as_the_deployment_says(env):
    """A deployment whose record says two_officer_confirmation: one officer's 'confirm' leaves the alert
    awaiting a second officer at the control room, a second officer's confirms it, a rejection makes it disputed.
    A record from a van before the field existed: one officer, as before."""
    from accountability_helpers import CTX, Clock, request

    from appliance.deployments.record import build_record
    from appliance.deployments.record import payload as deployment_payload

    def deployment(two_officer: bool | None) -> str:
        clock = Clock()
        record = build_record(request(clock), CTX, now=clock(), source="console", max_hours=12,
                              two_officer=bool(two_officer))
        if two_officer is None:  # a van before the field
            del record["two_officer_confirmation"]
        env.send("deployments", deployment_payload(DEV, "started", record))
        return record["id"]

    def decide(alert: Alert, officer: str, decision: str) -> str:
        d = Decision(device_id=DEV, alert_id=alert.event_id, officer_id=officer, decision=decision)
        env.send("decisions", d.to_payload())
        env.settle(len(env.lines) + 1)
        return env.store.alert_outcome(DEV, alert.event_id).state

    old, two = _alert(deployment_id=deployment(None)), _alert(deployment_id=deployment(True))
    disputed = _alert(deployment_id=two.deployment_id)
    for a in (old, two, disputed):
        env.send("alerts", a.to_payload())
    env.settle(5)
    assert env.store.alert_outcome(DEV, two.event_id).state == "pending"
    assert decide(old, "PC-1", "confirm") == "confirmed"
    assert env.lines[-1].endswith("confirm by PC-1; alert confirmed"), env.lines[-1]
    assert decide(two, "PC-1", "confirm") == "awaiting_second"
    assert env.lines[-1].endswith("; alert awaiting a second officer"), env.lines[-1]
    assert decide(two, "PC-1", "confirm") == "awaiting_second"  # the same officer twice is one officer
    assert decide(two, "PS-2", "confirm") == "confirmed"
    assert env.lines[-1].endswith("confirm by PS-2; alert confirmed"), env.lines[-1]
    assert decide(disputed, "PC-1", "confirm") == "awaiting_second"
    assert decide(disputed, "PS-2", "reject") == "disputed"
    assert "; alert disputed" in env.lines[-1]
