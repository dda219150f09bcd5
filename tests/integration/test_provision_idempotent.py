"""`appliance provision` is idempotent and never replaces a key without --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.cli.main import main
from appliance.config import load_config
from appliance.storage import DATABASES, key_provider_from_config, open_db


@pytest.fixture
def setup(tmp_path, capsys):
    for name in ("cr", "cr2"):
        assert main(["keys", "generate", "control-room", "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    config = tmp_path / "etc" / "appliance.toml"
    args = ["--device-id", "van-07", "--broker", "mqtts://broker.example:8883",
            "--control-room-key", str(tmp_path / "cr" / "control-room.ed25519.pub"),
            "--config", str(config), "--data-dir", str(tmp_path / "data")]
    return tmp_path, config, args


def _run(capsys, *args):
    rc = main(["provision", *args, "--json"])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if rc == 0 else out.err


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_second_run_changes_no_key_and_keeps_other_settings(setup, capsys):
    tmp_path, config, args = setup
    rc, first = _run(capsys, *args)
    assert rc == 0
    config.write_text(config.read_text() + '\n[detector]\nscore_threshold = 0.6\n')  # a technician's edit
    keys_before = {k: v for k, v in _files(tmp_path / "data").items() if not k.endswith(".csr")}
    rc, second = _run(capsys, *args[:3], "mqtts://broker2.example:8883", *args[4:])
    assert rc == 0
    keys_after = {k: v for k, v in _files(tmp_path / "data").items() if not k.endswith(".csr")}
    assert keys_after == keys_before
    assert second["public_keys"] == first["public_keys"]
    assert second["tls"]["spki_sha256"] == first["tls"]["spki_sha256"]
    cfg = load_config(config)
    assert cfg.mqtt.broker == "mqtts://broker2.example:8883" and cfg.detector.score_threshold == 0.6
    assert cfg.watchlist.control_room_key == tmp_path / "data" / "keys" / "control-room.ed25519.pub"
    assert config.stat().st_mode & 0o777 == 0o640


def test_refuses_another_identity_or_control_room_key_without_force(setup, capsys):
    tmp_path, _config, args = setup
    assert _run(capsys, *args)[0] == 0
    rc, err = _run(capsys, *[("van-08" if a == "van-07" else a) for a in args])
    assert rc == 2 and "provisioned for device 'van-07'" in err and "--force" in err
    other = str(tmp_path / "cr2" / "control-room.ed25519.pub")
    rc, err = _run(capsys, *[(other if a.endswith("cr/control-room.ed25519.pub") else a) for a in args])
    assert rc == 2 and "different control-room key" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_force_makes_new_keys_and_crypto_erases_the_old_databases(setup, capsys):
    tmp_path, config, args = setup
    rc, first = _run(capsys, *args)
    assert rc == 0
    cfg = load_config(config)
    for label in DATABASES:  # every database of the device, officers.db included (storage/databases.py)
        db = open_db(tmp_path / "data" / f"{label}.db", key_provider_from_config(cfg))
        db["t"].insert({"x": 1})
        db.close()
    assert any(f"created database key '{label}'" in a for a in first["actions"] for label in DATABASES)
    rc, second = _run(capsys, *args, "--force")
    assert rc == 0
    assert second["public_keys"]["x25519"]["key_id"] != first["public_keys"]["x25519"]["key_id"]
    assert second["tls"]["spki_sha256"] != first["tls"]["spki_sha256"]
    for label in DATABASES:
        assert not (tmp_path / "data" / f"{label}.db").exists(), label
    assert DATABASES == ("watchlist", "events", "officers")
    assert any("destroyed" in a for a in second["actions"])


def test_bad_inputs_are_one_line(setup, capsys):
    tmp_path, config, args = setup
    rc, err = _run(capsys, *args[:3], "http://nope", *args[4:])
    assert rc == 2 and "mqtts://" in err
    not_a_key = tmp_path / "nope.pub"
    not_a_key.write_text("hello")
    rc, err = _run(capsys, *args[:5], str(not_a_key), *args[6:])
    assert rc == 2 and "not a PEM public key" in err
    assert not config.exists()
