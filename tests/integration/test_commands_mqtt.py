"""Signed commands through a real TLS Mosquitto (deployed ACL) to a van with a real SQLCipher watchlist and
events database: revoke stops matching, erases the list, ends the deployment and acks; replayed, unsigned,
forged and foreign-key commands are refused and audited; deployments start and end by command."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from accountability_helpers import Clock, open_events, request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.audit.chain import iter_entries
from appliance.commands.actions import Revocation, device_actions, matching_stopper, watchlist_eraser
from appliance.commands.handler import CommandHandler
from appliance.commands.listener import CommandListener
from appliance.commands.sender import CommandSender
from appliance.commands.signing import build_command, sign_command
from appliance.config import CommandsConfig, DeploymentConfig, MatcherConfig
from appliance.deployments.manager import DeploymentManager
from appliance.deployments.record import MatchingContext
from appliance.matching.service import MatchService
from appliance.storage import KeyFileProvider
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.records import Entry
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.timeutil import iso, utcnow

CONTROL = Ed25519PrivateKey.generate()
DEVICE_X = X25519PrivateKey.generate()


def template(i):
    t = np.random.default_rng(i).standard_normal(128).astype(np.float32)
    return t / np.linalg.norm(t)


class Van:
    """The parts of a van that commands touch, wired the way the daemon wires them."""

    def __init__(self, tmp, broker):
        self.clock = Clock()
        self.events, self.audit = open_events(tmp)
        self.watchlist = WatchlistStore.open(tmp, KeyFileProvider(tmp / "keys"))
        entries = [Entry({"id": f"S-{i}", "display_name": f"Person {i}", "category": "wanted", "legal_basis": "b",
                          "image_source": "c", "expires_at": iso(utcnow() + timedelta(days=30))},
                         template(i)[None, :], b"\xff\xd8\xff" + bytes([i]) * 50) for i in range(5)]
        path = build_bundle(entries, tmp / "wl.lfrwl", watchlist_id="met-wanted", model_id="m", signing_key=CONTROL,
                            recipients=[("van-01", DEVICE_X.public_key())], version=3)
        self.watchlist.apply(open_bundle(path.path, CONTROL.public_key(), "van-01", DEVICE_X), model_id="m")
        self.matcher = MatchService.from_config(MatcherConfig(threshold=0.5), 0.5, self.watchlist.load_gallery())
        self.resets = 0
        self.deployments = DeploymentManager(self.events, "van-01", context=self.context,
                                             config=DeploymentConfig(), audit=self.audit, clock=self.clock)
        revocation = Revocation(stop_matching=matching_stopper(self.matcher, self._reset),
                                erase_watchlist=watchlist_eraser(self.watchlist), deployments=self.deployments,
                                audit=self.audit,
                                current_watchlist_id=lambda: (self.watchlist.meta() or {}).get("watchlist_id"))
        self.handler = CommandHandler(device_id="van-01", verify_key=CONTROL.public_key(), events=self.events,
                                      audit=self.audit, actions=device_actions(self.deployments, revocation),
                                      config=CommandsConfig())
        self.listener = CommandListener(broker.settings("van-01", client_id="van-01-commands"), "van-01",
                                        self.handler).start()

    def _reset(self):
        self.resets += 1

    def context(self) -> MatchingContext:
        m = self.watchlist.meta() or {}
        return MatchingContext(m.get("watchlist_id"), m.get("version"), m.get("watchlist_sha256"),
                               self.matcher.gallery.n_subjects, 0.5, "m", "cd" * 32)

    def kinds(self):
        return [e.kind for e in iter_entries(self.events.db)]

    def close(self):
        self.listener.stop()
        self.events.close()
        self.watchlist.close()


@pytest.fixture
def van(tmp_path, tls_broker):
    v = Van(tmp_path, tls_broker)
    yield v
    v.close()


@pytest.fixture
def control(tls_broker):
    s = CommandSender(tls_broker.settings("control-room", client_id="control-room-test"), CONTROL).connect()
    yield s
    s.close()


def test_revoke_stops_matching_erases_ends_and_acks(van, control):
    van.deployments.start(request(van.clock), source="console")
    assert van.matcher.identify(template(2)).subject_id == "S-2"
    env = sign_command(CONTROL, build_command("revoke_watchlist", "van-01", {"reason": "authority withdrawn"}))
    ack = control.send_envelope("van-01", env)
    assert ack["status"] == "done", ack
    assert ack["result"]["matching_stopped"] and ack["result"]["watchlist_erased"]
    assert ack["result"]["matching_stopped_ms"] < 50
    # Matching stopped, the list is gone (from memory and from the database), the deployment ended.
    assert van.matcher.identify(template(2)) is None and van.resets == 1
    assert van.watchlist.meta() is None and van.watchlist.counts() == (0, 0)
    assert van.watchlist.load_gallery().n_subjects == 0
    assert not van.deployments.is_active()
    ended = json.loads(van.events.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = 'deployments' ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert ended["event"] == "ended" and ended["deployment"]["end_reason"] == "revoked"
    assert ended["deployment"]["ended_by"].startswith("control-room:")
    kinds = van.kinds()
    assert kinds[-3:] == ["command.accepted", "deployment.ended", "revocation"], kinds

    # The same signed command again is a replay: refused, audited, nothing done.
    again = control.send_envelope("van-01", env)
    assert (again["status"], again["reason"]) == ("refused", "replayed")
    assert van.kinds()[-1] == "command.refused"
    assert van.audit.verify().ok


@pytest.mark.parametrize("forgery, reason", [
    ("unsigned", "unsigned"), ("tampered", "bad_signature"), ("rogue_key", "unknown_key"),
    ("garbage", "malformed"), ("other_van", "wrong_device"), ("expired", "expired"),
])
def test_bad_commands_are_refused_and_audited(van, control, forgery, reason):
    van.deployments.start(request(van.clock), source="console")
    cmd = build_command("revoke_watchlist", "van-01")
    env = sign_command(CONTROL, cmd)
    if forgery == "unsigned":
        del env["sig"]
    elif forgery == "tampered":
        env["command"]["args"] = {"reason": "edited in transit"}
    elif forgery == "rogue_key":
        env = sign_command(Ed25519PrivateKey.generate(), cmd)
    elif forgery == "garbage":
        env = b"\x00not json"
    elif forgery == "other_van":
        env = sign_command(CONTROL, build_command("revoke_watchlist", "van-02"))
    elif forgery == "expired":
        env = sign_command(CONTROL, build_command("revoke_watchlist", "van-01",
                                                  now=utcnow() - timedelta(hours=2)))
    ack = control.send_envelope("van-01", env)
    assert (ack["status"], ack["reason"]) == ("refused", reason), ack
    # Nothing happened: still matching, list intact, deployment on.
    assert van.matcher.identify(template(1)).subject_id == "S-1"
    assert van.watchlist.counts()[0] == 5 and van.deployments.is_active()
    last = list(iter_entries(van.events.db))[-1]
    assert last.kind == "command.refused" and last.data["reason"] == reason
    assert van.audit.verify().ok


def test_start_and_end_deployment_by_command(van, control):
    args = {"authorised_by": "Supt A. Smith", "purpose": "Wanted offenders, match day",
            "location": {"text": "Stadium approach", "lat": 51.55, "lon": -0.108}, "dpia_ref": "DPIA-2026-050",
            "planned_end": iso(utcnow() + timedelta(hours=3))}
    ack = control.send("van-01", "start_deployment", args)
    assert ack["status"] == "done", ack
    dep = van.deployments.active()
    assert dep["source"] == "command" and dep["authorised_by"] == "Supt A. Smith"
    assert dep["command"]["id"] == ack["command_id"] and dep["watchlist"]["id"] == "met-wanted"
    again = control.send("van-01", "start_deployment", args)
    assert (again["status"], again["reason"]) == ("refused", "not_applicable") and "is active" in again["detail"]
    ack = control.send("van-01", "end_deployment", {"deployment_id": dep["id"]})
    assert ack["status"] == "done" and ack["result"]["deployment_id"] == dep["id"]
    assert not van.deployments.is_active()
    ack = control.send("van-01", "end_deployment", {})
    assert (ack["status"], ack["reason"]) == ("refused", "not_applicable")
    assert van.audit.verify().ok


def test_command_cli(van, tls_broker, tmp_path, capsys):
    from appliance.cli.main import main
    from appliance.keys.files import write_private

    key = tmp_path / "control-room.ed25519.key"
    from cryptography.hazmat.primitives import serialization

    write_private(key, CONTROL.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    conn = ["--device", "van-01", "--signing-key", str(key), "--broker", tls_broker.control_url,
            "--ca", str(tls_broker.ca),
            "--cert", str(tls_broker.cert("control-room")), "--key", str(tls_broker.key("control-room")),
            "--client-id", "control-room-cli"]
    assert main(["command", "end-deployment", *conn]) == 1  # nothing to end: refused, exit 1
    assert json.loads(capsys.readouterr().out)["reason"] == "not_applicable"
    van.deployments.start(request(van.clock), source="console")
    assert main(["command", "revoke", "--watchlist", "met-wanted", "--reason", "withdrawn", *conn]) == 0
    ack = json.loads(capsys.readouterr().out)
    assert ack["status"] == "done" and ack["result"]["watchlist_erased"]
    assert not van.deployments.is_active() and van.watchlist.meta() is None


def test_listener_connects_when_the_broker_comes_up(van, control, tls_broker):
    # Runs last in this module: it stops and restarts the module's broker.
    van.listener.stop()
    tls_broker.stop()
    listener = CommandListener(tls_broker.settings("van-01", client_id="van-01-commands-late"), "van-01",
                               van.handler, retry_max_s=1).start(timeout=2)
    try:
        assert not listener.wait_connected(0.5)
        tls_broker.start()
        assert listener.wait_connected(20), "the listener should connect once the broker is up"
        control.conn.wait_connected(20)
        van.deployments.start(request(van.clock), source="console")
        ack = control.send("van-01", "end_deployment", {})
        assert ack["status"] == "done"
    finally:
        listener.stop()
