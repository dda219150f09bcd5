"""Self-test logic: each check reports pass/fail/skip with a reason, never a traceback; exit code on failure."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from appliance.cli.main import main
from appliance.config import load_config
from appliance.device import selftest
from appliance.device.selftest import FAIL, PASS, SKIP, run_check, run_selftest
from appliance.errors import ApplianceError, ModelError
from appliance.sync.broker_url import parse_broker_url
from appliance.sync.mqtt import MqttSettings


def _config(tmp_path: Path, **sections):
    overrides = {"device.data_dir": str(tmp_path / "data")}
    overrides.update(sections)
    return load_config(None, overrides)


def test_a_check_that_raises_becomes_one_failure_line(tmp_path):
    cfg = _config(tmp_path)

    def boom(_c):
        raise ModelError("model file x.tflite (detector) is missing: run `make models`")

    def bug(_c):
        raise KeyError("surprise")

    assert run_check("models", boom, cfg).status == FAIL
    r = run_check("odd", bug, cfg)
    assert r.status == FAIL and r.reason == "KeyError: 'surprise'"


def test_unknown_check_names_are_refused(tmp_path):
    with pytest.raises(ApplianceError, match="unknown check"):
        run_selftest(_config(tmp_path), only=["cameras"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtts://broker.example", ("broker.example", 8883, True)),
        ("mqtts://10.0.0.5:18883", ("10.0.0.5", 18883, True)),
        ("mqtt://localhost", ("localhost", 1883, False)),
    ],
)
def test_broker_urls(url, expected):
    """One parser for the self-test, provisioning and the MQTT connection (appliance/sync/broker_url.py)."""
    b = parse_broker_url(url)
    assert (b.host, b.port, b.tls) == expected
    s = MqttSettings.from_url(url, "c")
    assert (s.host, s.port, s.tls) == expected


@pytest.mark.parametrize("url", ["http://x", "mqtts://", "broker:8883", "mqtts://h:notaport"])
def test_bad_broker_urls(url):
    with pytest.raises(ApplianceError, match="broker URL"):
        parse_broker_url(url)
    with pytest.raises(ApplianceError, match="broker URL"):
        MqttSettings.from_url(url, "c")


def test_plain_mqtt_fails_the_broker_check(tmp_path):
    r = run_check("broker", selftest.check_broker, _config(tmp_path, **{"mqtt.broker": "mqtt://127.0.0.1:1883"}))
    assert r.status == FAIL and "TLS" in r.reason


def test_missing_client_certificate_says_what_to_do(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    cfg = _config(tmp_path, **{"mqtt.ca_file": str(ca), "mqtt.cert_file": str(tmp_path / "device.crt"),
                               "mqtt.key_file": str(ca)})
    r = run_check("broker", selftest.check_broker, cfg)
    assert r.status == FAIL and "device.crt not found" in r.reason and "CSR" in r.reason


def _zone(root: Path, n: int, kind: str, milli: str) -> None:
    z = root / f"thermal_zone{n}"
    z.mkdir(parents=True)
    (z / "type").write_text(kind + "\n")
    (z / "temp").write_text(milli + "\n")


def test_temperature_reads_the_hottest_zone(tmp_path):
    _zone(tmp_path, 0, "cpu-thermal", "52350")
    _zone(tmp_path, 1, "gpu-thermal", "47000")
    _zone(tmp_path, 2, "broken", "n/a")
    text, details = selftest.check_temperature(None, root=tmp_path)
    assert text == "52.4 °C (cpu-thermal)"
    assert details["celsius"] == {"thermal_zone0:cpu-thermal": 52.35, "thermal_zone1:gpu-thermal": 47.0}


def test_temperature_too_hot_fails_and_unreadable_skips(tmp_path):
    _zone(tmp_path / "hot", 0, "cpu-thermal", "85100")
    with pytest.raises(selftest._Fail, match=r"85\.1 °C"):
        selftest.check_temperature(None, root=tmp_path / "hot")
    with pytest.raises(selftest._Skip):
        selftest.check_temperature(None, root=tmp_path / "none")


def test_disk_check_uses_the_nearest_existing_parent(tmp_path, monkeypatch):
    cfg = _config(tmp_path)  # data dir does not exist yet
    text, details = selftest.check_disk(cfg)
    assert str(tmp_path / "data") in text and details["free_bytes"] > 0
    monkeypatch.setattr(selftest, "MIN_FREE_BYTES", details["total_bytes"] + 1)
    assert run_check("disk", selftest.check_disk, cfg).status == FAIL


def test_database_key_without_provisioning_fails_then_a_loose_key_file_fails(tmp_path):
    cfg = _config(tmp_path)
    r = run_check("database_key", selftest.check_database_key, cfg)
    assert r.status == FAIL and "appliance provision" in r.reason
    keys = tmp_path / "data" / "keys"
    keys.mkdir(parents=True)
    key = keys / "watchlist.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o644)
    r = run_check("database_key", selftest.check_database_key, cfg)
    assert r.status == FAIL and "0644" in r.reason
    key.chmod(stat.S_IRUSR | stat.S_IWUSR)
    r = run_check("database_key", selftest.check_database_key, cfg)
    assert r.status == PASS and "no database created yet" in r.reason
    # officers.db is checked like the others (one list: appliance/storage/databases.py)
    officers = keys / "officers.key"
    officers.write_text(os.urandom(32).hex() + "\n")
    officers.chmod(0o644)
    r = run_check("database_key", selftest.check_database_key, cfg)
    assert r.status == FAIL and "officers" in r.reason and "0644" in r.reason


def test_no_watchlist_yet_is_a_skip_not_a_failure(tmp_path):
    assert run_check("watchlist", selftest.check_watchlist, _config(tmp_path)).status == SKIP


def test_cli_json_and_exit_code(tmp_path, capsys):
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[device]\nid = "van-07"\ndata_dir = "{tmp_path / "data"}"\n')
    assert main(["selftest", "--config", str(cfg), "--json", "--only", "disk,temperature"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "selftest/1" and doc["device"] == "van-07" and doc["ok"] is True
    assert [c["name"] for c in doc["checks"]] == ["disk", "temperature"]
    assert main(["selftest", "--config", str(cfg), "--only", "database_key"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  database_key") and "selftest van-07: 1 failed (database_key)" in out


def test_cli_missing_config_is_one_line(tmp_path, capsys):
    assert main(["selftest", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "not found" in err
