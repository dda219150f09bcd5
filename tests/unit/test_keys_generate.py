"""`appliance keys generate`: key pairs on disk, private files 0600, loose modes refused, nothing overwritten."""

import stat

import pytest

from appliance.cli.main import main
from appliance.errors import KeyMaterialError
from appliance.keys.keypairs import (
    key_id,
    load_device_private,
    load_device_public,
    load_signing_key,
    load_verify_key,
)


def mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_generate_control_room_and_device(tmp_path, capsys):
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path)]) == 0
    assert main(["keys", "generate", "device", "--out", str(tmp_path), "--name", "van-01"]) == 0
    out = capsys.readouterr().out
    assert "ed25519" in out and "x25519" in out
    sk = load_signing_key(tmp_path / "control-room.ed25519.key")
    pk = load_verify_key(tmp_path / "control-room.ed25519.pub")
    sig = sk.sign(b"hello")
    pk.verify(sig, b"hello")
    assert key_id(pk) in out
    dev = load_device_private(tmp_path / "van-01.x25519.key")
    assert key_id(dev.public_key()) == key_id(load_device_public(tmp_path / "van-01.x25519.pub"))
    load_signing_key(tmp_path / "van-01.ed25519.key")
    for p in tmp_path.glob("*.key"):
        assert mode(p) == 0o600, p
    for p in tmp_path.glob("*.pub"):
        assert mode(p) == 0o644, p
    # the private PEM never appears on stdout
    assert "PRIVATE KEY" not in out


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "control-room.ed25519.key").read_bytes()
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert (tmp_path / "control-room.ed25519.key").read_bytes() == before


def test_loose_private_key_refused(tmp_path):
    main(["keys", "generate", "control-room", "--out", str(tmp_path)])
    key = tmp_path / "control-room.ed25519.key"
    key.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="must be 0600"):
        load_signing_key(key)


def test_wrong_kind_of_key_refused(tmp_path):
    main(["keys", "generate", "device", "--out", str(tmp_path)])
    with pytest.raises(KeyMaterialError, match=r"X25519|Ed25519"):
        load_signing_key(tmp_path / "device.x25519.key")
    with pytest.raises(KeyMaterialError):
        load_verify_key(tmp_path / "device.x25519.pub")


def test_show_prints_key_ids(tmp_path, capsys):
    main(["keys", "generate", "device", "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(["keys", "show", str(tmp_path / "device.x25519.pub"), str(tmp_path / "device.ed25519.key")]) == 0
    out = capsys.readouterr().out
    assert "X25519 public" in out and "Ed25519 private" in out
