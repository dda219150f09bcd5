"""The console off the device must be HTTPS: config validation, and the certificate provisioning makes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509

from appliance.config import load_config
from appliance.device.console_tls import ensure_console_certificate
from appliance.errors import ConfigError


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_consoles_need_no_tls(bind):
    assert load_config(None, {"console.bind": bind}).console.https is False


@pytest.mark.parametrize("bind", ["0.0.0.0", "10.8.0.2", "::", "van-07.local"])
def test_a_console_on_the_vans_network_without_tls_is_refused_with_the_fix(bind):
    with pytest.raises(ConfigError, match="reachable from the van's network: set tls_cert and tls_key") as e:
        load_config(None, {"console.bind": bind})
    assert f"--console-bind {bind}" in str(e.value)
    load_config(None, {"console.bind": bind, "console.enabled": False})  # no console, nothing to protect


def test_tls_turns_secure_cookies_on_and_needs_both_files():
    c = load_config(None, {"console.bind": "10.8.0.2", "console.tls_cert": "/c.crt", "console.tls_key": "/c.key"})
    assert c.console.https and c.console.secure_cookies
    with pytest.raises(ConfigError, match="given together"):
        load_config(None, {"console.tls_cert": "/c.crt"})


def _san(path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)


def test_certificate_is_kept_while_good_and_replaced_when_it_names_another_address_or_nears_expiry(tmp_path):
    first = ensure_console_certificate(tmp_path, "10.8.0.2", "van-07")
    assert first.action.startswith("created") and _san(first.cert) == ["10.8.0.2"]
    assert first.key.stat().st_mode & 0o777 == 0o600
    again = ensure_console_certificate(tmp_path, "10.8.0.2", "van-07")
    assert again.action.startswith("kept") and again.sha256 == first.sha256
    moved = ensure_console_certificate(tmp_path, "van-07.local", "van-07")
    assert "does not name van-07.local" in moved.action and _san(moved.cert) == ["van-07.local"]
    later = datetime.now(timezone.utc) + timedelta(days=800)
    renewed = ensure_console_certificate(tmp_path, "van-07.local", "van-07", now=later)
    assert "expires within 30 days" in renewed.action and renewed.sha256 != moved.sha256
