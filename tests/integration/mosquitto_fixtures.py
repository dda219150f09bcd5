"""A real TLS Mosquitto for integration tests (appliance.sync.local_broker: the deployed config and ACL).

    def test_x(tls_broker):                      # fixture in tests/integration/conftest.py
        s = tls_broker.settings("van-01")        # MqttSettings: TLS, client cert with CN van-01
        tls_broker.mqtt_config("van-01")         # the [mqtt] section of an appliance config
        tls_broker.stop(); tls_broker.start()    # restart on the same port (persistence kept)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.sync.local_broker import TlsBroker, free_port, make_pki, missing_tools

__all__ = ["TlsBroker", "free_port", "make_pki", "tls_broker_or_skip"]


def tls_broker_or_skip(workdir: Path) -> TlsBroker:
    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install mosquitto openssl; .ci/run does it)")
    broker = TlsBroker(workdir)
    broker.start()
    return broker
