"""Signed commands to the running daemon over a real TLS Mosquitto: a revoke stops matching at once, erases
the watchlist, ends the deployment and acks; a forged, unsigned, altered or replayed one changes nothing and is
refused with its reason. Skips until the daemon is wired
with the safeguards (appliance.daemon.assembly.build_safeguards)."""

from __future__ import annotations

import inspect
import json
import time

import pytest
from accountability_helpers import Clock, provision_device, request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.commands.sender import CommandSender
from appliance.commands.signing import build_command, sign_command
from appliance.config import load_config


def _daemon_is_wired() -> bool:
    from appliance.daemon.service import Appliance

    return "safeguards" in inspect.getsource(Appliance)


pytestmark = pytest.mark.skipif(not _daemon_is_wired(), reason="the daemon is not wired with the safeguards yet "
                                "(appliance/deployments/device.py: build_safeguards)")


@pytest.fixture
def daemon(tmp_path, tls_broker, lfw_dir, pipeline):
    import shutil

    from appliance.daemon.service import Appliance

    _, cfg, sk = provision_device(tmp_path)
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, name in enumerate(sorted(p.name for p in lfw_dir.iterdir())[:10]):
        shutil.copy(sorted((lfw_dir / name).glob("*.jpg"))[0], camera / f"{i:03d}.jpg")
    mqtt = tls_broker.mqtt_config("van-01")
    cfg.write_text(cfg.read_text() + f'[capture]\nsource = "{camera}"\nloop = true\nfps = 10.0\n'
                   "[mqtt]\n" + "".join(f'{k} = "{v}"\n' for k, v in mqtt.items()))
    app = Appliance(load_config(cfg), cfg, with_mqtt=True, with_console=False)
    app.start()
    assert app.safeguards.listener.wait_connected(20)
    sender = CommandSender(tls_broker.settings("control-room", client_id="control-room-daemon-test"), sk).connect()
    yield app, sender, sk
    sender.close()
    app.stop()


def wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_revoke_on_the_running_daemon(daemon):
    app, sender, sk = daemon
    app.safeguards.deployments.start(request(Clock()), source="console")
    assert wait(lambda: app.counters.snapshot().get("looks_embedded", 0) > 0), app.counters.snapshot()
    assert app.matching_enabled()

    # Forged (another key), unsigned, altered after signing: each refused with its reason, nothing changes.
    forged = sign_command(Ed25519PrivateKey.generate(), build_command("revoke_watchlist", "van-01"))
    unsigned = {k: v for k, v in sign_command(sk, build_command("revoke_watchlist", "van-01")).items() if k != "sig"}
    altered = sign_command(sk, build_command("end_deployment", "van-01"))
    altered["command"] = {**altered["command"], "type": "revoke_watchlist"}
    for envelope, reason in ((forged, "unknown_key"), (unsigned, "unsigned"), (altered, "bad_signature")):
        ack = sender.send_envelope("van-01", envelope)
        assert (ack["status"], ack["reason"]) == ("refused", reason), ack
        assert app.matching_enabled() and app.watchlist.meta() is not None

    revoke = sign_command(sk, build_command("revoke_watchlist", "van-01", {"reason": "authority withdrawn"}))
    ack = sender.send_envelope("van-01", revoke)
    assert ack["status"] == "done", ack
    assert not app.matching_enabled() and app.matcher.gallery.n_subjects == 0
    assert app.watchlist.meta() is None and app.watchlist.counts() == (0, 0)
    assert app.console_status()["deployment"] is None
    time.sleep(0.5)
    before = app.counters.snapshot().get("looks_embedded", 0)
    time.sleep(1.5)
    assert app.counters.snapshot().get("looks_embedded", 0) == before  # nothing embedded any more
    ack = sender.send_envelope("van-01", revoke)  # the same signed envelope again: a replay
    assert (ack["status"], ack["reason"]) == ("refused", "replayed"), ack
    kinds = [r[0] for r in app.events.db.conn.execute("SELECT kind FROM audit ORDER BY seq")]
    assert kinds[-7:] == ["command.refused", "command.refused", "command.refused", "command.accepted",
                          "deployment.ended", "revocation", "command.refused"], kinds
    assert app.safeguards.audit.verify().ok
    ended = [json.loads(r[0]) for r in app.events.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = 'deployments' ORDER BY id")][-1]
    assert ended["deployment"]["end_reason"] == "revoked"
