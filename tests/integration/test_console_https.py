"""A console a tablet reaches over the van's network is HTTPS, end to end.

`appliance provision --console-bind ADDR` makes the console's key and certificate on the device and prints
the fingerprint for the tablet; the config refuses a non-loopback console without them. The real daemon
then serves the console over TLS: Chromium, trusting only that certificate's key (its SPKI pinned with
--ignore-certificate-errors-spki-list, as a force would pin or install it on the tablet), logs an officer in;
the session cookie is Secure; plain HTTP on the same port gets no page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
from pathlib import Path

import pytest
import tomli_w
import tomllib
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from daemon_env import OFFICER, PIN, daemon_process, make_street, provision_van

from appliance.cli.main import main
from appliance.device.console_tls import ensure_console_certificate, fingerprint

CHROMIUM = "/usr/bin/chromium"


def test_provision_makes_the_console_certificate_for_a_tablet(tmp_path, capsys):
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path / "cr")]) == 0
    config, data = tmp_path / "appliance.toml", tmp_path / "data"
    base = ["provision", "--device-id", "van-07", "--broker", "mqtts://broker.example:8883", "--control-room-key",
            str(tmp_path / "cr" / "control-room.ed25519.pub"), "--config", str(config), "--data-dir", str(data),
            "--owner", "", "--json"]
    capsys.readouterr()
    assert main([*base, "--console-bind", "10.8.0.2"]) == 0
    first = json.loads(capsys.readouterr().out)["console"]
    assert first["url"] == "https://10.8.0.2:8080/"
    cert = x509.load_pem_x509_certificate(Path(first["certificate"]).read_bytes())
    assert fingerprint(cert) == first["sha256"]
    written = tomllib.loads(config.read_text())["console"]
    assert written == {"bind": "10.8.0.2", "tls_cert": str(data / "tls/console.crt"),
                       "tls_key": str(data / "tls/console.key")}
    assert (data / "tls/console.key").stat().st_mode & 0o777 == 0o600

    assert main(base) == 0  # again, same address: the tablet's pinned certificate stays valid
    assert json.loads(capsys.readouterr().out)["console"]["sha256"] == first["sha256"]
    assert main([*base, "--console-bind", "10.8.0.9"]) == 0  # the van's LAN was renumbered
    moved = json.loads(capsys.readouterr().out)
    assert moved["console"]["sha256"] != first["sha256"]
    assert any("does not name 10.8.0.9" in a for a in moved["actions"])

    # A hand-edited config that opens the console to the network without TLS is refused, in one line.
    doc = tomllib.loads(config.read_text())
    doc["console"] = {"bind": "0.0.0.0"}
    config.write_text(tomli_w.dumps(doc))
    assert main(["selftest", "--config", str(config), "--only", "disk"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "reachable from the van's network" in err, err


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras: make install")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    return sync_api


def _spki_pin(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_the_daemon_serves_the_console_over_https(tmp_path, tls_broker, pipeline, lfw_dir, crowd_dir, browser):
    street = make_street(tmp_path / "street", lfw_dir, crowd_dir, ["Abdullah_Gul"])
    van = provision_van(tmp_path, tls_broker, pipeline, lfw_dir, street, loop=True, distractors=2)
    made = ensure_console_certificate(van.data / "tls", "127.0.0.1", "van-01")
    doc = tomllib.loads(van.config_path.read_text())
    doc["console"].update(tls_cert=str(made.cert), tls_key=str(made.key))
    van.config_path.write_text(tomli_w.dumps(doc))
    url = van.console_url.replace("http://", "https://") + "/"
    port = int(url.rsplit(":", 1)[1].strip("/"))

    proc = daemon_process(van)
    try:
        assert any(f"console listening on {url}" in line for line in proc.lines), proc.lines[-20:]
        served = ssl.get_server_certificate(("127.0.0.1", port))
        assert fingerprint(x509.load_pem_x509_certificate(served.encode())) == made.sha256

        # Plain HTTP to the TLS port: no page, only a broken connection.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                reply = s.recv(1024)
            except ConnectionResetError:
                reply = b""
        assert b"<html" not in reply.lower() and not reply.startswith(b"HTTP/1.1 200")

        with browser.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", f"--ignore-certificate-errors-spki-list={_spki_pin(made.cert)}"])
            try:
                page = b.new_page()
                page.goto(url)
                page.fill("#officer_id", OFFICER)
                for digit in PIN:
                    page.click(f'#keypad button[data-key="{digit}"]')
                page.click("#keypad .key-ok")
                page.wait_for_url(url)
                page.locator("#st-live .v").wait_for()
                cookies = page.context.cookies()
                assert cookies and all(c["secure"] and c["httpOnly"] for c in cookies), cookies
            finally:
                b.close()
    finally:
        proc.proc.terminate()
        proc.proc.wait(timeout=30)
