"""The self-test's watchlist and database-key checks on a provisioned device that has received a real
watchlist (built from LFW photos, signed by the pinned control-room key, encrypted to the device's key)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from appliance.cli.main import main
from appliance.config import load_config
from appliance.daemon.assembly import make_receiver, open_store
from appliance.keys.keypairs import load_device_public, load_signing_key
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.timeutil import utcnow


def _selftest(capsys, config, only: str) -> tuple[int, dict]:
    rc = main(["selftest", "--config", str(config), "--json", "--only", only])
    return rc, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_watchlist_present_valid_then_expired(tmp_path, capsys, lfw_watchlist, pipeline):
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path / "cr")]) == 0
    config = tmp_path / "appliance.toml"
    assert main(["provision", "--device-id", "van-07", "--broker", "mqtts://127.0.0.1:8883",
                 "--control-room-key", str(tmp_path / "cr" / "control-room.ed25519.pub"),
                 "--config", str(config), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    capsys.readouterr()
    cfg = load_config(config)
    entries, _ = lfw_watchlist
    store = open_store(cfg)
    receiver = make_receiver(cfg, store)
    keys = tmp_path / "data" / "keys"

    def apply(version: int, expires_in: timedelta) -> None:
        now = utcnow()
        built = build_bundle(entries, tmp_path / f"v{version}.lfrwl", watchlist_id="wl-test", version=version,
                             model_id=pipeline.model_id, issued_at=now, expires_at=now + expires_in,
                             signing_key=load_signing_key(tmp_path / "cr" / "control-room.ed25519.key"),
                             recipients=[("van-07", load_device_public(keys / "device.x25519.pub"))])
        ack = receiver.process(built.path)
        assert ack["status"] == "applied", ack

    apply(1, timedelta(days=7))
    rc, checks = _selftest(capsys, config, "database_key,watchlist")
    assert rc == 0, checks
    assert checks["watchlist"]["status"] == "pass"
    assert f"{len(entries)} subjects" in checks["watchlist"]["reason"] and "wl-test v1" in checks["watchlist"]["reason"]
    assert "watchlist.db decrypt" in checks["database_key"]["reason"]

    # A watchlist that runs out: the device stops matching and the self-test fails, saying so.
    apply(2, timedelta(seconds=2))
    time.sleep(2.5)
    rc, checks = _selftest(capsys, config, "watchlist")
    store.close()
    assert rc == 1 and checks["watchlist"]["status"] == "fail" and "expired" in checks["watchlist"]["reason"]
