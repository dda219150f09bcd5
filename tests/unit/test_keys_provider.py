"""Key providers: per-database keys from a 0600 key file, the Pi OTP key (+ salt), or an env var."""

import stat

import pytest

from appliance.config import load_config
from appliance.errors import KeyMaterialError
from appliance.storage import EnvKeyProvider, KeyFileProvider, RpiOtpKeyProvider, key_provider_from_config


def test_key_file_created_0600_and_stable(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    assert not kp.has_key("watchlist")
    with pytest.raises(KeyMaterialError, match="not found"):
        kp.key("watchlist")
    k1 = kp.key("watchlist", create=True)
    assert len(k1) == 32
    assert kp.key("watchlist") == k1
    assert stat.S_IMODE((tmp_path / "keys" / "watchlist.key").stat().st_mode) == 0o600
    assert kp.key("events", create=True) != k1  # independent keys per database


def test_key_file_looser_than_0600_refused(tmp_path):
    kp = KeyFileProvider(tmp_path)
    kp.key("watchlist", create=True)
    (tmp_path / "watchlist.key").chmod(0o640)
    with pytest.raises(KeyMaterialError, match=r"mode 0640; it must be 0600"):
        kp.key("watchlist")


def test_key_file_malformed_refused(tmp_path):
    p = tmp_path / "watchlist.key"
    p.write_text("not a key\n")
    p.chmod(0o600)
    with pytest.raises(KeyMaterialError, match="64 hex digits"):
        KeyFileProvider(tmp_path).key("watchlist")


def test_destroy_key_file(tmp_path):
    kp = KeyFileProvider(tmp_path)
    kp.key("watchlist", create=True)
    assert "destroyed" in kp.destroy("watchlist")
    assert not kp.has_key("watchlist")
    assert "no key file" in kp.destroy("watchlist")


def test_bad_label_refused(tmp_path):
    with pytest.raises(KeyMaterialError, match="label"):
        KeyFileProvider(tmp_path).key("../etc/passwd", create=True)


def test_env_provider(monkeypatch):
    kp = EnvKeyProvider("TEST_APPLIANCE_KEY")
    monkeypatch.delenv("TEST_APPLIANCE_KEY", raising=False)
    with pytest.raises(KeyMaterialError, match="TEST_APPLIANCE_KEY is not set"):
        kp.key("watchlist")
    monkeypatch.setenv("TEST_APPLIANCE_KEY", "zz")
    with pytest.raises(KeyMaterialError, match="64 hex digits"):
        kp.key("watchlist")
    monkeypatch.setenv("TEST_APPLIANCE_KEY", "ab" * 32)
    a, b = kp.key("watchlist"), kp.key("events")
    assert len(a) == 32 and a != b and a != bytes.fromhex("ab" * 32)
    assert "cannot be destroyed" in kp.destroy("watchlist")


def fake_otp_tool(tmp_path, hexkey):
    tool = tmp_path / "rpi-otp-private-key"
    tool.write_text(f"#!/bin/sh\necho {hexkey}\n")
    tool.chmod(0o755)
    return str(tool)


def test_rpi_otp_provider_with_salt(tmp_path):
    tool = fake_otp_tool(tmp_path, "0123456789abcdef" * 4)
    kp = RpiOtpKeyProvider(tmp_path / "keys", tool=tool)
    k = kp.key("watchlist", create=True)
    assert kp.key("watchlist") == k and len(k) == 32
    # a different board (OTP) gives a different key for the same salt
    (tmp_path / "other").mkdir()
    other = RpiOtpKeyProvider(tmp_path / "keys", tool=fake_otp_tool(tmp_path / "other", "fe" * 32))
    assert other.key("watchlist") != k
    kp.destroy("watchlist")
    with pytest.raises(KeyMaterialError, match="erased"):
        kp.key("watchlist")


def test_rpi_otp_unprogrammed_refused(tmp_path):
    kp = RpiOtpKeyProvider(tmp_path, tool=fake_otp_tool(tmp_path, "0" * 64))
    with pytest.raises(KeyMaterialError, match="not programmed"):
        kp.key("watchlist", create=True)


def test_rpi_otp_absent(tmp_path):
    kp = RpiOtpKeyProvider(tmp_path, tool="/nonexistent/rpi-otp-private-key")
    with pytest.raises(KeyMaterialError, match="not found"):
        kp.key("watchlist", create=True)


def test_from_config(tmp_path):
    cfg = load_config(overrides={"device.data_dir": str(tmp_path), "storage.key_provider": "file"})
    kp = key_provider_from_config(cfg)
    assert isinstance(kp, KeyFileProvider) and kp.keys_dir == tmp_path / "keys"
    cfg = load_config(overrides={"storage.key_provider": "env", "storage.key_env": "X_KEY"})
    assert isinstance(key_provider_from_config(cfg), EnvKeyProvider)
