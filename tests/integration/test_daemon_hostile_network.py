"""The hostile-network rows of docs/safeguards.md re-proved on the running daemon (`Appliance`: real models, real
SQLCipher databases, a replayed camera of LFW faces, its one MQTT connection to a real TLS Mosquitto with the
deployed ACL), not on the receivers alone (tests/integration/test_hostile_network.py):

- a signed bundle with an impossible date, and a reused transfer id with another bundle, are refused with the
  reason in the audit chain; the daemon keeps the list it runs and keeps raising alerts on it;
- a transfer whose chunks hold more than it declared leaves the daemon's spool at once;
- forged receipts on the van's receipts topic do not make the daemon's outbox drop or skip events: what the
  control room did not store stays unconfirmed, and reaches it once it is back;
- with `deployment.two_officer_confirmation`, the control room shows an alert as confirmed only once two
  officers have confirmed it (the rule of appliance/decisions/confirmation.py, applied to what the van sends);
- poison, garbage and oversized messages on the commands and watchlist topics do not stop a signed revoke:
  matching stops, the list is erased, the deployment ends, the revoke is acked, and the daemon stays up.

One daemon serves the module (the tests run in this order; the revoke is last). Its control room is a real
`ControlReceiver` with the control-room key, so the van gets signed receipts.
"""

from __future__ import annotations

import json
import queue
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from accountability_helpers import Clock, provision_device, request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from daemon_env import wait_for
from test_hostile_network import over_declared_chunks

from appliance.audit.chain import iter_entries
from appliance.commands.signing import build_command, sign_command
from appliance.config import load_config
from appliance.console.backend import store_decision
from appliance.control.receiver import ControlReceiver
from appliance.control.store import ControlStore, open_control_db
from appliance.daemon.assembly import open_store
from appliance.daemon.service import Appliance
from appliance.events.receipts import sign_receipt, unsigned_receipt
from appliance.keys.keypairs import load_device_private
from appliance.keys.paths import device_key_path
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection
from appliance.sync.watchlist_sync import publish_bundle
from appliance.watchlist import builder as builder_mod
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle

DEVICE = "van-01"



@pytest.fixture(scope="module")
def van(tmp_path_factory, tls_broker, lfw_watchlist, pipeline):
    tmp = tmp_path_factory.mktemp("hostile-van")
    # Short cooldown: the looping camera keeps raising alerts, so "still matching" can be seen after each attack.
    # A short receipt timeout: what the control room did not confirm is published again within seconds.
    # Blank frames between the faces and a short track memory: every pass of a face is a new track.
    _, cfg, sk = provision_device(tmp, n_subjects=0, deployment={"two_officer_confirmation": True},
                                  alerts={"cooldown_s": 3.0}, events={"receipt_timeout_s": 3.0},
                                  tracker={"max_missed_frames": 2})
    config = load_config(cfg)
    device_x = load_device_private(device_key_path(config))
    entries, probes = lfw_watchlist
    v = SimpleNamespace(tmp=tmp, sk=sk, entries=entries, device_x=device_x, broker=tls_broker, lines=[])
    store = open_store(config)
    try:  # the first list through the real path: built, signed, encrypted to this van's key, opened, applied
        store.apply(open_bundle(_bundle(v, "wl-1", 1), sk.public_key(), DEVICE, device_x), model_id=pipeline.model_id)
    finally:
        store.close()
    camera = tmp / "camera"
    camera.mkdir()
    for i, image in enumerate(probes.values()):  # each subject in another photo of them, a few frames each
        for k in range(9):
            cv2.imwrite(str(camera / f"{i:02d}-{k}.jpg"), image if k < 6 else np.full_like(image, 128))
    mqtt = tls_broker.mqtt_config(DEVICE)
    cfg.write_text(cfg.read_text() + f'[capture]\nsource = "{camera}"\nloop = true\nfps = 5.0\n'
                   "[mqtt]\n" + "".join(f'{k} = "{val}"\n' for k, val in mqtt.items()))
    v.control_db = tmp / "control.db"
    v.control = ControlStore(open_control_db(v.control_db))
    v.receiver = _control_room(v)
    v.app = Appliance(load_config(cfg), cfg, with_mqtt=True, with_console=False)
    v.app.start()
    try:
        assert v.app.safeguards.listener.wait_connected(20) and v.app.publisher.wait_link(True, 20)
        v.deployment = v.app.safeguards.deployments.start(request(Clock()), source="console")["id"]
        yield v
    finally:
        v.app.stop()
        v.receiver.stop()
        v.control.close()


def _control_room(v) -> ControlReceiver:
    """The control room's receiver, signing its receipts with the key the van pins."""
    return ControlReceiver(v.broker.settings("control-room", "cr-daemon-hostile"), v.control,
                           out=v.lines.append, signing_key=v.sk).start()


def _bundle(v, name: str, version: int, entries=None):
    return build_bundle(entries or v.entries, v.tmp / f"{name}.lfrwl", watchlist_id="test-watchlist",
                        model_id="mobilefacenet-int8", signing_key=v.sk,
                        recipients=[(DEVICE, v.device_x.public_key())], version=version).path


def _publish(v, path, tid: str | None = None) -> dict:
    res = publish_bundle(v.broker.settings("control-room", "cr-bundles-daemon"), path, [DEVICE], chunk_bytes=4096,
                         wait_ack_s=30, transfer_id=tid)
    assert DEVICE in res.acks, "the daemon did not ack the bundle"
    return res.acks[DEVICE]


def _audit(app, kind: str) -> list:
    return [e for e in iter_entries(app.events.db) if e.kind == kind]


def _alerts(app) -> list[tuple]:
    """(event_id, watchlist_version, watchlist_sha256) of every alert the daemon raised, oldest first."""
    return app.events.db.conn.execute(
        "SELECT event_id, watchlist_version, watchlist_sha256 FROM alerts ORDER BY created_at").fetchall()


def _new_alert_on(app, version: int, after: int) -> tuple:
    """Wait for an alert raised after the first `after` ones, against watchlist `version`."""
    return wait_for(lambda: next((a for a in _alerts(app)[after:] if a[1] == version), None), 60,
                 f"a new alert on watchlist version {version}")


def _outbox_ids(app) -> dict[str, int]:
    return {r[0]: r[1] for r in app.events.db.conn.execute("SELECT event_id, id FROM outbox")}


def _stored_at_control(v) -> set[str]:
    return {a["event_id"] for a in v.control.arrivals(DEVICE)}


# -- bundles --------------------------------------------------------------------------------------------------
def test_an_absurd_bundle_and_a_reused_transfer_id_are_refused_and_audited_and_matching_goes_on(van, monkeypatch):
    app = van.app
    _new_alert_on(app, 1, 0)  # the daemon matches on its first list
    meta = app.watchlist.meta()
    n_subjects = app.matcher.gallery.n_subjects

    # Month 99 in a signed header (the control room's own check skipped, as a compromised or buggy one would).
    real_write = builder_mod.write_bundle

    def write_month_99(out, fields, *a, **kw):
        import appliance.watchlist.bundle as bundle_mod

        with monkeypatch.context() as m:
            m.setattr(bundle_mod, "first_error", lambda *_: None)
            return real_write(out, {**fields, "expires_at": "2027-99-01T00:00:00Z"}, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(builder_mod, "write_bundle", write_month_99)
        bad = _bundle(van, "month99", 2)
    ack = _publish(van, bad)
    assert (ack["status"], ack["reason"]) == ("refused", "malformed") and "expires_at" in ack["detail"], ack
    refused = _audit(app, "watchlist.refused")
    assert refused and refused[-1].data["reason"] == "malformed" and "expires_at" in refused[-1].data["detail"]
    assert app.watchlist.meta()["watchlist_sha256"] == meta["watchlist_sha256"]
    assert app.matcher.gallery.n_subjects == n_subjects and app.matching_enabled()
    wait_for(lambda: app.sync.spool.transfers() == [], 10, "the refused transfer to leave the spool")  # after its ack
    _new_alert_on(app, 1, len(_alerts(app)))  # still matching, on the same list

    # A transfer id names one bundle for good: version 2 under it is applied, version 3 under it is not.
    tid = "5a" * 16
    assert _publish(van, _bundle(van, "wl-2", 2), tid)["status"] == "applied"
    wait_for(lambda: app.matcher.gallery.version == 2, 10, "the daemon to swap in version 2")
    applied = app.watchlist.meta()
    ack = _publish(van, _bundle(van, "wl-3", 3, van.entries[:-1]), tid)
    assert (ack["status"], ack["reason"]) == ("refused", "replay"), ack
    refused = _audit(app, "watchlist.refused")
    assert refused[-1].data["reason"] == "replay" and refused[-1].data["transfer_id"] == tid, refused[-1].data
    assert app.watchlist.meta()["watchlist_sha256"] == applied["watchlist_sha256"]
    assert app.matcher.gallery.version == 2 and app.matcher.gallery.n_subjects == n_subjects
    alert = _new_alert_on(app, 2, len(_alerts(app)))
    assert alert[2] == applied["watchlist_sha256"]
    assert app.safeguards.audit.verify().ok


def test_a_transfer_holding_more_than_it_declared_leaves_the_daemons_spool(van):
    """Chunks whose data add up to more than their declared total, never completing: the daemon's spool drops
    the transfer at once (not after the 48-hour stale sweep) and the list in use does not change."""
    app = van.app
    meta = app.watchlist.meta()
    path = _bundle(van, "big", 9)
    tid = bytes.fromhex("cd" * 16)
    lying = over_declared_chunks(path, tid)
    conn = MqttConnection(van.broker.settings("control-room", "cr-spool-daemon"), clean_start=True).connect()
    try:
        conn.publish(topics.watchlist_bundles(DEVICE), lying[0].encode(), qos=1).wait(10)
        wait_for(lambda: app.sync.spool.transfers() == [tid], 10, "the first chunk in the daemon's spool")
        for c in lying[1:]:
            conn.publish(topics.watchlist_bundles(DEVICE), c.encode(), qos=1).wait(10)
    finally:
        conn.close()
    wait_for(lambda: app.sync.spool.transfers() == [], 10, "the oversized transfer to leave the spool")
    assert app.watchlist.meta()["watchlist_sha256"] == meta["watchlist_sha256"] and app.matching_enabled()


# -- receipts -------------------------------------------------------------------------------------------------
def test_forged_receipts_do_not_make_the_daemon_drop_or_skip_events(van):
    app, events = van.app, van.app.events
    wait_for(lambda: set(_outbox_ids(app)) <= _stored_at_control(van), 60, "the control room to hold the outbox")

    # The control room goes away; the daemon keeps raising alerts, which must wait in its outbox.
    van.receiver.stop()
    held = len(_outbox_ids(app))
    wait_for(lambda: len(_outbox_ids(app)) >= held + 3, 60, "alerts queued while the control room is away")
    stream = events.stream_id()
    beyond = events.published_upto() + 10**6
    forged = [unsigned_receipt(device_id=DEVICE, stream_id=stream, upto=beyond, gap=False),
              sign_receipt(Ed25519PrivateKey.generate(), device_id=DEVICE, stream_id=stream, upto=beyond, gap=False),
              sign_receipt(van.sk, device_id=DEVICE, stream_id=stream, upto=beyond, gap=False),
              sign_receipt(van.sk, device_id="van-02", stream_id=stream, upto=events.published_upto(), gap=False)]
    refused_before = app.publisher.receipts_refused
    attacker = MqttConnection(van.broker.settings("control-room", "cr-attacker-daemon"), clean_start=True).connect()
    try:
        for body in forged:
            attacker.publish(topics.receipts(DEVICE), json.dumps(body), qos=1).wait(10)
        attacker.publish(topics.receipts(DEVICE), b"\xff" * 70_000, qos=1).wait(10)
    finally:
        attacker.close()
    time.sleep(2.0)  # delivered (QoS 1 acked by the broker); the van handles a receipt within milliseconds
    missing = set(_outbox_ids(app)) - _stored_at_control(van)
    assert missing, "nothing was waiting for the control room"
    ids = _outbox_ids(app)
    assert events.received_upto() < min(ids[e] for e in missing), "a forged receipt was believed"
    unconfirmed = {r[0] for r in events.db.conn.execute("SELECT event_id FROM outbox WHERE received_at IS NULL")}
    assert missing <= unconfirmed
    assert app.publisher.receipts_refused >= refused_before + 5

    # The control room is back: every event reaches it, once, in the van's order, and is then confirmed.
    van.receiver = _control_room(van)
    wait_for(lambda: missing <= _stored_at_control(van), 60, "the held events at the control room")
    arrivals = van.control.arrivals(DEVICE)
    assert len({a["event_id"] for a in arrivals}) == len(arrivals)
    assert [a["seq"] for a in arrivals] == sorted(a["seq"] for a in arrivals)
    wait_for(lambda: events.received_upto() >= max(ids[e] for e in missing), 30, "receipts for the held events")
    assert events.received_upto() <= events.published_upto()


# -- the control room and the two-officer rule ----------------------------------------------------------------
def test_the_control_room_shows_confirmed_only_after_two_officers(van):
    app = van.app
    decide = store_decision(app.events, DEVICE)  # the console's decide hook
    alert_id = wait_for(lambda: next((a[0] for a in _alerts(app)[::-1] if a[0] in _stored_at_control(van)), None),
                     60, "an alert at the control room")
    started = van.control.db.conn.execute(
        "SELECT payload FROM deployments WHERE deployment_id = ? AND event = 'started'", (van.deployment,)).fetchone()
    assert json.loads(started[0])["deployment"]["two_officer_confirmation"] is True

    def at_control(decision) -> str:
        wait_for(lambda: decision.event_id in _stored_at_control(van), 30, "the decision at the control room")
        return van.control.alert_outcome(DEVICE, alert_id).state

    assert van.control.alert_outcome(DEVICE, alert_id).state == "pending"
    assert at_control(decide(alert_id, "PC1234", "confirm", None)) == "awaiting_second"
    assert at_control(decide(alert_id, "PC1234", "confirm", None)) == "awaiting_second"  # the same officer
    line = next(x for x in van.lines if f"on alert {alert_id}" in x)
    assert "awaiting a second officer" in line, line
    assert at_control(decide(alert_id, "PS5678", "confirm", None)) == "confirmed"
    assert sorted(van.control.alert_outcome(DEVICE, alert_id).confirmed_by) == ["PC1234", "PS5678"]
    assert "alert confirmed" in [x for x in van.lines if f"on alert {alert_id}" in x][-1]


# -- poison, then a revoke (last: it erases the list and ends the deployment) -------------------------------
def test_poison_on_the_command_and_watchlist_topics_does_not_stop_a_signed_revoke(van):
    app = van.app
    acks: queue.Queue = queue.Queue()
    cr = MqttConnection(van.broker.settings("control-room", "cr-poison-daemon"), clean_start=True,
                        on_message=lambda m: acks.put(json.loads(m.payload)))
    cr.connect()
    try:
        cr.subscribe(topics.commands_ack(DEVICE), 1)
        time.sleep(0.5)  # the SUBACK
        huge = b'{"schema": "lfr.command/1", "pad": "' + b"a" * 3_000_000 + b'"}'
        poison = [b"[" * 200_000, b'{"a":' * 50_000, b"\xff\xfe", b"1e999999", b'{"schema": "\\ud800"}', huge] * 6
        for p in poison:  # more than the broker's in-flight window of 20
            cr.publish(topics.commands(DEVICE), p, qos=1).wait(20)
            cr.publish(topics.watchlist_bundles(DEVICE), p, qos=1).wait(20)
        refused = [acks.get(timeout=30) for _ in poison]
        assert all((a["status"], a["reason"]) == ("refused", "malformed") for a in refused), refused[:3]
        assert app.matching_enabled() and app.watchlist.meta() is not None

        frames = app.counters.snapshot().get("frames", 0)
        revoke = sign_command(van.sk, build_command("revoke_watchlist", DEVICE, {"reason": "authority withdrawn"}))
        t0 = time.monotonic()
        cr.publish(topics.commands(DEVICE), json.dumps(revoke), qos=1).wait(10)
        ack = acks.get(timeout=10)
        assert (ack["status"], ack["type"]) == ("done", "revoke_watchlist"), ack
        assert time.monotonic() - t0 < 5.0
        assert not app.matching_enabled() and app.matcher.gallery.n_subjects == 0
        assert app.watchlist.meta() is None and app.watchlist.counts() == (0, 0)
        assert app.safeguards.deployments.active_id() is None

        # Still up: the frame loop runs, the command listener still answers (the revoke again: a replay).
        wait_for(lambda: app.counters.snapshot().get("frames", 0) > frames + 5, 20, "the frame loop to go on")
        cr.publish(topics.commands(DEVICE), json.dumps(revoke), qos=1).wait(10)
        again = acks.get(timeout=10)
        assert (again["status"], again["reason"]) == ("refused", "replayed"), again
    finally:
        cr.close()
    kinds = [e.kind for e in iter_entries(app.events.db)]
    assert kinds.count("command.refused") >= len(poison) + 1
    tail = kinds[len(kinds) - kinds[::-1].index("command.accepted") - 1:]
    assert tail[:3] == ["command.accepted", "deployment.ended", "revocation"], tail
    ended = [json.loads(r[0]) for r in app.events.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = 'deployments' ORDER BY id")][-1]
    assert ended["event"] == "ended" and ended["deployment"]["end_reason"] == "revoked"
    assert app.safeguards.audit.verify().ok
    assert app.publisher.link["state"] == "up"
