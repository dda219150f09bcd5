"""The one parser of broker URLs (the daemon's config, the self-test, provisioning and every CLI --broker).

    b = parse_broker_url("mqtts://broker.example:8883")   # BrokerUrl(host, port, tls)

mqtts:// (or ssl://) is MQTT over TLS, default port 8883; mqtt:// (or tcp://) is plain, default 1883, for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from appliance.errors import SyncError

TLS_SCHEMES = ("mqtts", "ssl")
PLAIN_SCHEMES = ("mqtt", "tcp")


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerUrl:
    """Raises SyncError (an ApplianceError) with one line naming the URL."""
    parts = urlsplit(url)
    if parts.scheme not in TLS_SCHEMES + PLAIN_SCHEMES or not parts.hostname:
        raise SyncError(f"broker URL {url!r} must look like mqtts://host:port")
    tls = parts.scheme in TLS_SCHEMES
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise SyncError(f"broker URL {url!r}: bad port") from None
    return BrokerUrl(parts.hostname, port, tls)
