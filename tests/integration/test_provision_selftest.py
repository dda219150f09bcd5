"""`appliance provision` then `appliance selftest --json` on this machine, against a real TLS Mosquitto.

The broker is started by the test on a free port, requiring client certificates (CN = MQTT username). The
device's CSR from provisioning is signed by the test CA, installed with a second, idempotent provision run,
and the self-test then passes every check that needs no Pi hardware, with a replayed source as the camera
and a real chronyd on a free port as the force's time server (this sandbox reaches no public NTP server).
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from time_server import chrony_time_server

from appliance.cli.main import main
from appliance.device.selftest import local_sync_status
from appliance.paths import models_dir

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="mosquitto missing: apt-get install mosquitto"
)


# --- a small PKI -----------------------------------------------------------------------------------------

def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: x509.Name, public_key, issuer: x509.Name, issuer_key, *, ca=False, server=False):
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


class CA:
    def __init__(self, folder: Path, name: str = "Test LFR CA"):
        self.key = _key()
        self.name = _name(name)
        self.cert = _cert(self.name, self.key.public_key(), self.name, self.key, ca=True)
        self.path = folder / f"{name.replace(' ', '_')}.crt"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def sign_csr(self, csr_path: Path, out: Path) -> Path:
        csr = x509.load_pem_x509_csr(csr_path.read_bytes())
        assert csr.is_signature_valid
        out.write_bytes(_cert(csr.subject, csr.public_key(), self.name, self.key)
                        .public_bytes(serialization.Encoding.PEM))
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pki(tmp_path):
    folder = tmp_path / "pki"
    folder.mkdir()
    return CA(folder)


@pytest.fixture
def broker(tmp_path, pki):
    """Mosquitto with a TLS listener that requires a client certificate from the test CA."""
    folder = tmp_path / "broker"
    folder.mkdir()
    key = _key()
    (folder / "server.key").write_bytes(_pem_key(key))
    (folder / "server.key").chmod(0o600)
    server = _cert(_name("localhost"), key.public_key(), pki.name, pki.key, server=True)
    (folder / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    port = _free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        # As root, mosquitto would drop to user mosquitto, who cannot read pytest's 0700 tmp dirs.
        f"user {getpass.getuser()}\nper_listener_settings false\nallow_anonymous false\npersistence false\n"
        f"listener {port} 127.0.0.1\ncafile {pki.path}\ncertfile {folder / 'server.crt'}\n"
        f"keyfile {folder / 'server.key'}\nrequire_certificate true\nuse_identity_as_username true\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    yield {"url": f"mqtts://127.0.0.1:{port}", "proc": proc}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def control_room_key(tmp_path, capsys):
    assert main(["keys", "generate", "control-room", "--out", str(tmp_path / "cr")]) == 0
    capsys.readouterr()
    return tmp_path / "cr" / "control-room.ed25519.pub"


@pytest.fixture
def replay_source():
    from appliance.paths import shared_dir

    crowd = shared_dir() / "data" / "crowd"
    if not crowd.is_dir():
        pytest.skip(f"test data {crowd} not found: set APPLIANCE_SHARED")
    return str(crowd)


@pytest.fixture
def time_server(tmp_path):
    with chrony_time_server(tmp_path / "ntp") as server:
        yield server


def _provision(capsys, *args: str) -> tuple[int, dict | str]:
    rc = main(["provision", *args, "--json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if rc == 0 else out.err)


def _selftest(capsys, config: Path) -> tuple[int, dict]:
    rc = main(["selftest", "--config", str(config), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_provision_then_selftest_passes_everything_but_pi_hardware(
    tmp_path, capsys, broker, pki, control_room_key, replay_source, time_server
):
    config, data = tmp_path / "etc" / "appliance.toml", tmp_path / "data"
    base = ["--device-id", "van-07", "--broker", broker["url"], "--control-room-key", str(control_room_key),
            "--config", str(config), "--data-dir", str(data), "--source", replay_source,
            "--models-dir", str(models_dir()), "--time-server", time_server]

    rc, first = _provision(capsys, *base)
    assert rc == 0, first
    csr = Path(first["tls"]["csr"])
    assert x509.load_pem_x509_csr(csr.read_bytes()).subject.rfc4514_string() == "CN=van-07"
    for private in ("keys/device.x25519.key", "keys/device.ed25519.key", "keys/watchlist.key",
                    "keys/events.key", "tls/device.key"):
        assert (data / private).stat().st_mode & 0o777 == 0o600, private
    assert data.stat().st_mode & 0o777 == 0o700

    # Before the certificate is signed, the self-test says exactly that.
    rc, doc = _selftest(capsys, config)
    broker_check = next(c for c in doc["checks"] if c["name"] == "broker")
    assert rc == 1 and broker_check["status"] == "fail" and "CSR" in broker_check["reason"]

    # The control room signs the CSR; provisioning again installs it and keeps every key.
    crt = pki.sign_csr(csr, tmp_path / "van-07.crt")
    rc, second = _provision(capsys, *base, "--cert", str(crt), "--ca", str(pki.path))
    assert rc == 0, second
    assert second["public_keys"]["x25519"]["key_id"] == first["public_keys"]["x25519"]["key_id"]
    assert second["tls"]["spki_sha256"] == first["tls"]["spki_sha256"]
    assert any(a.startswith("kept existing device keys") for a in second["actions"])

    rc, doc = _selftest(capsys, config)
    status = {c["name"]: c for c in doc["checks"]}
    with capsys.disabled():
        print("\n" + "\n".join(f"{c['status']:4} {c['name']:13} {c['reason']}" for c in doc["checks"]))
    for name in ("camera", "models", "interpreter", "pipeline", "database_key", "broker", "clock", "disk"):
        assert status[name]["status"] == "pass", status[name]
    assert status["watchlist"]["status"] == "skip"  # none received yet
    assert status["temperature"]["status"] in ("pass", "skip")  # no thermal zones in a VM
    assert status["clock"]["details"]["time_servers"][0]["server"] == time_server
    assert abs(status["clock"]["details"]["offset_s"]) < 0.05
    assert doc["failed"] == [] and rc == 0

    # The broker going away is a failure with the reason.
    broker["proc"].terminate()
    broker["proc"].wait(timeout=10)
    assert main(["selftest", "--config", str(config), "--json", "--only", "broker"]) == 1
    check = json.loads(capsys.readouterr().out)["checks"][0]
    assert check["status"] == "fail" and "cannot reach broker" in check["reason"]


def test_a_certificate_from_another_ca_is_refused_by_the_broker(
    tmp_path, capsys, broker, pki, control_room_key, replay_source
):
    config, data = tmp_path / "appliance.toml", tmp_path / "data"
    base = ["--device-id", "van-09", "--broker", broker["url"], "--control-room-key", str(control_room_key),
            "--config", str(config), "--data-dir", str(data)]
    rc, first = _provision(capsys, *base)
    assert rc == 0
    rogue = CA(tmp_path, "Rogue CA")
    crt = rogue.sign_csr(Path(first["tls"]["csr"]), tmp_path / "rogue.crt")
    # provision checks the certificate against the CA it is given...
    rc, err = _provision(capsys, *base, "--cert", str(crt), "--ca", str(pki.path))
    assert rc == 2 and "not issued by the CA" in err
    assert not (data / "tls" / "ca.crt").exists() and not (data / "tls" / "device.crt").exists()  # nothing half-done
    # ...and if a technician installs the wrong CA too, the broker is where it fails, with the reason.
    rc, _ = _provision(capsys, *base, "--cert", str(crt), "--ca", str(rogue.path))
    assert rc == 0
    assert main(["selftest", "--config", str(config), "--json", "--only", "broker"]) == 1
    check = json.loads(capsys.readouterr().out)["checks"][0]
    assert check["status"] == "fail" and ("TLS" in check["reason"] or "certificate" in check["reason"]), check


def _clock_check(capsys, tmp_path, *servers: str) -> tuple[int, dict]:
    config = tmp_path / "clock.toml"
    config.write_text(f"[device]\ndata_dir = '{tmp_path / 'data'}'\ntime_servers = {list(servers)!r}\n")
    rc = main(["selftest", "--config", str(config), "--json", "--only", "clock"])
    return rc, json.loads(capsys.readouterr().out)["checks"][0]


def test_a_clock_two_minutes_off_the_time_server_fails_with_the_offset(tmp_path, capsys):
    with chrony_time_server(tmp_path / "ahead", offset_s=120) as ahead:
        rc, check = _clock_check(capsys, tmp_path, ahead)
    assert rc == 1 and check["status"] == "fail", check
    seconds = float(re.search(r"the clock is ([0-9.]+) s slow against 127\.0\.0\.1", check["reason"]).group(1))
    assert 119 < seconds < 121, check


def test_one_wrong_time_server_of_three_is_outvoted(tmp_path, capsys):
    with (chrony_time_server(tmp_path / "a") as a, chrony_time_server(tmp_path / "b") as b,
          chrony_time_server(tmp_path / "c", offset_s=-3600) as wrong):
        rc, check = _clock_check(capsys, tmp_path, a, wrong, b)
    assert rc == 0 and check["status"] == "pass", check
    offsets = [m["offset_s"] for m in check["details"]["time_servers"]]
    assert abs(offsets[1] + 3600) < 1 and abs(offsets[0]) < 0.05 and abs(offsets[2]) < 0.05


def test_no_time_server_answering_is_a_failure_unless_a_local_daemon_is_synchronised(tmp_path, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{s.getsockname()[1]}"  # bound, never answers
        rc, check = _clock_check(capsys, tmp_path, silent)
    if local_sync_status()[0]:
        assert rc == 0 and "no configured time server answered" in check["reason"], check
    else:
        assert rc == 1 and check["status"] == "fail", check
        assert check["reason"].startswith(f"no time server answered ({silent}: ")
