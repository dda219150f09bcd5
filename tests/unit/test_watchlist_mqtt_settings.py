"""MQTT settings and topics for the watchlist sync: broker URLs, TLS file checks, the topic table."""

from __future__ import annotations

import pytest

from appliance.config import load_config
from appliance.errors import SyncError
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings


def test_topic_table():
    assert topics.watchlist_bundles("van-01") == "lfr/v1/devices/van-01/watchlist/bundles"
    assert topics.watchlist_ack("van-01") == "lfr/v1/devices/van-01/watchlist/ack"
    assert topics.status("v") == "lfr/v1/devices/v/status" and topics.commands("v") == "lfr/v1/devices/v/commands"
    for bad in ("+", "#", "a/b", "", "x" * 65):
        with pytest.raises(ValueError):
            topics.alerts(bad)


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [("mqtts://broker:8883", "broker", 8883, True), ("mqtts://b", "b", 8883, True), ("mqtt://b", "b", 1883, False),
     ("ssl://10.0.0.5:9000", "10.0.0.5", 9000, True)],
)
def test_broker_urls(url, host, port, tls):
    s = MqttSettings.from_url(url, "c")
    assert (s.host, s.port, s.tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://b", "broker:8883", "mqtts://"])
def test_bad_broker_urls(url):
    with pytest.raises(SyncError, match="mqtts://host:port"):
        MqttSettings.from_url(url, "c")


def test_from_config():
    cfg = load_config(overrides={"mqtt.broker": "mqtts://b:1", "mqtt.ca_file": "/ca", "mqtt.keepalive_s": 10})
    s = MqttSettings.from_config(cfg.mqtt, "van-01-watchlist")
    assert s.ca_file.name == "ca" and s.keepalive_s == 10 and s.session_expiry_s == 7 * 24 * 3600


def test_tls_files_checked_before_connecting(tmp_path):
    with pytest.raises(SyncError, match="needs a CA certificate"):
        MqttConnection(MqttSettings.from_url("mqtts://b", "c"))
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "c.crt", "c.key"))
    with pytest.raises(SyncError, match="not found"):
        MqttConnection(MqttSettings.from_url("mqtts://b", "c", ca_file=ca, cert_file=cert, key_file=key))
    for p in (ca, cert, key):
        p.write_text("x")
    key.chmod(0o644)
    with pytest.raises(SyncError, match="must be 0600"):
        MqttConnection(MqttSettings.from_url("mqtts://b", "c", ca_file=ca, cert_file=cert, key_file=key))
    key.chmod(0o600)
    with pytest.raises(SyncError, match="cannot load the TLS certificates"):
        MqttConnection(MqttSettings.from_url("mqtts://b", "c", ca_file=ca, cert_file=cert, key_file=key))
