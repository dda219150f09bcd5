"""Provisioning: give a device its identity, keys and configuration, once, on the device itself.

`provision()` is idempotent: run again with the same device id it keeps every existing key and only fills
in what is missing (a signed certificate, the broker CA, a changed broker URL). It never replaces a key
without `force`; with `force` the old keys are destroyed first, which crypto-erases the databases they
protected. Private keys are made here and never leave the device: the broker certificate comes from a CSR.

Layout under the data directory (all owned by the `appliance` user, the directory 0700):
    keys/device.x25519.key|.pub     watchlist bundles are encrypted to this key   (appliance.keys)
    keys/device.ed25519.key|.pub    the device's identity (signs what it sends)   (appliance.keys)
    keys/control-room.ed25519.pub   the pinned control-room key: only bundles it signed are accepted
    keys/watchlist.key, events.key  database keys, through the configured key provider (appliance.storage)
    tls/device.key, device.csr      the TLS client key (EC P-256) and its CSR, CN = device id
    tls/device.crt, ca.crt          the signed client certificate and the broker's CA, when given
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from appliance.config import Config, DeviceConfig, format_validation_error, is_loopback
from appliance.device.console_tls import ensure_console_certificate, sha256_fingerprint
from appliance.errors import ApplianceError, ConfigError, KeyMaterialError
from appliance.keys.files import read_private, shred, write_private
from appliance.keys.keypairs import generate_device, key_id, load_device_public, load_verify_key, raw_public
from appliance.storage import DATABASES, db_path, erase_db, key_provider_from_config
from appliance.sync.broker_url import parse_broker_url

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SERVICE_USER = "appliance"
CONTROL_ROOM_PIN = "control-room.ed25519.pub"
DEVICE_KEY_FILES = ("device.x25519.key", "device.x25519.pub", "device.ed25519.key", "device.ed25519.pub")


class ProvisionError(ApplianceError):
    """Provisioning refused: it would overwrite keys or identity without --force, or an input is unusable."""


@dataclass
class ProvisionResult:
    device_id: str
    config_path: Path
    data_dir: Path
    actions: list[str] = field(default_factory=list)
    public_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    tls: dict[str, Any] = field(default_factory=dict)
    console: dict[str, Any] = field(default_factory=dict)
    control_room: dict[str, str] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)


def spki_fingerprint(public_key) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, colon-separated hex (what `openssl pkey -pubout | sha256` gives)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_fingerprint(der)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _write_config(path: Path, data: dict, group: int | None) -> None:
    try:
        Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by `appliance provision`; edit freely (re-running provision keeps your other settings).\n"
        "# Reference: docs/configuration.md\n\n"
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".appliance.toml.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(header + tomli_w.dumps(_plain(data)))
        os.chmod(tmp, 0o640)  # the daemon's group reads it; it holds paths, not secrets
        if group is not None:
            os.chown(tmp, 0, group)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, Path):
        return str(value)
    return value


def _service_user(owner: str | None) -> pwd.struct_passwd | None:
    """The account that must own the data (the daemon's), when we run as root and it exists."""
    if owner is None or os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(owner)
    except KeyError:
        return None


def _chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.chown(name, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _load_cert(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except FileNotFoundError:
        raise ProvisionError(f"{what} {path} not found") from None
    except ValueError:
        raise ProvisionError(f"{what} {path} is not a PEM certificate") from None


def _cn(cert_or_csr) -> str | None:
    attrs = cert_or_csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def make_csr(key: ec.EllipticCurvePrivateKey, device_id: str) -> x509.CertificateSigningRequest:
    """A CSR for a TLS client certificate whose CN is the device id (the broker's MQTT username)."""
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _load_tls_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(read_private(path), password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(f"{path} is not an EC key")
    return key


def provision(
    *,
    device_id: str,
    broker: str,
    control_room_key: Path,
    config_path: Path,
    data_dir: Path | None = None,
    key_provider: str | None = None,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    source: str | None = None,
    models_dir: Path | None = None,
    time_servers: list[str] | None = None,
    console_bind: str | None = None,
    force: bool = False,
    owner: str | None = SERVICE_USER,
) -> ProvisionResult:
    parse_broker_url(broker)  # one clear line for a bad URL, before anything is written
    config_path = Path(config_path)
    data = _read_toml(config_path)
    old_id = data.get("device", {}).get("id")
    if old_id and old_id != device_id and not force:
        raise ProvisionError(
            f"{config_path} is provisioned for device '{old_id}', not '{device_id}': "
            "use --force to re-provision (new keys; the old databases are erased)"
        )
    device = data.setdefault("device", {})
    device["id"] = device_id
    if data_dir is not None:
        device["data_dir"] = str(Path(data_dir).resolve())
    if key_provider is not None:
        data.setdefault("storage", {})["key_provider"] = key_provider
    if source is not None:
        data.setdefault("capture", {})["source"] = source
    if models_dir is not None:
        data.setdefault("models", {})["dir"] = str(models_dir)
    if time_servers:
        device["time_servers"] = list(time_servers)
    console = data.setdefault("console", {})
    if console_bind is not None:
        console["bind"] = console_bind
    if not is_loopback(console.get("bind", "127.0.0.1")) and not console.get("tls_cert"):
        # The certificate is made below, in the data dir; name it now so the config validates.
        tls_dir = Path(device.get("data_dir", DeviceConfig().data_dir)) / "tls"
        console["tls_cert"], console["tls_key"] = str(tls_dir / "console.crt"), str(tls_dir / "console.key")
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, "provisioning")) from None

    data_dir = config.device.data_dir
    keys_dir = config.storage.keys_dir or data_dir / "keys"
    tls_dir = data_dir / "tls"
    result = ProvisionResult(device_id, config_path, data_dir)
    act = result.actions.append
    reprovision = force and (old_id is not None or any((keys_dir / f).exists() for f in DEVICE_KEY_FILES))
    for d in (data_dir, keys_dir, tls_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)

    # --- the control room's key, pinned --------------------------------------------------------------------
    offered = load_verify_key(control_room_key)
    pin = keys_dir / CONTROL_ROOM_PIN
    if pin.exists():
        pinned = load_verify_key(pin)
        if raw_public(pinned) != raw_public(offered):
            if not force:
                raise ProvisionError(
                    f"a different control-room key ({key_id(pinned)}) is pinned in {pin}; "
                    f"use --force to pin {key_id(offered)} instead"
                )
            pin.unlink()
    if not pin.exists():
        pin.write_bytes(Path(control_room_key).read_bytes())
        pin.chmod(0o644)
        act(f"pinned control-room key {key_id(offered)} in {pin}")
    else:
        act(f"kept pinned control-room key {key_id(offered)}")
    result.control_room = {"key_id": key_id(offered), "path": str(pin)}

    # --- device key pairs (appliance.keys) ---------------------------------------------------------------
    present = [f for f in DEVICE_KEY_FILES if (keys_dir / f).exists()]
    if present and reprovision:
        for f in present:
            shred(keys_dir / f)
        act("destroyed the old device keys (--force)")
        present = []
    if not present:
        generate_device(keys_dir, "device")
        act(f"created device keys in {keys_dir}")
    elif len(present) != len(DEVICE_KEY_FILES):
        missing = sorted(set(DEVICE_KEY_FILES) - set(present))
        raise ProvisionError(f"device keys in {keys_dir} are incomplete (missing {', '.join(missing)}): use --force")
    else:
        act("kept existing device keys")
    x_pub = load_device_public(keys_dir / "device.x25519.pub")
    e_pub = load_verify_key(keys_dir / "device.ed25519.pub")
    result.public_keys = {
        "x25519": {"key_id": key_id(x_pub), "path": str(keys_dir / "device.x25519.pub"),
                   "pem": (keys_dir / "device.x25519.pub").read_text()},
        "ed25519": {"key_id": key_id(e_pub), "path": str(keys_dir / "device.ed25519.pub"),
                    "pem": (keys_dir / "device.ed25519.pub").read_text()},
    }

    # --- database keys, through the key provider (appliance.storage) -------------------------------------
    provider = key_provider_from_config(config)
    for label in DATABASES:
        if reprovision and provider.has_key(label):
            for line in erase_db(db_path(data_dir, label), provider, label=label):
                act(line + " (--force)")
        if provider.has_key(label):
            provider.key(label)  # still validate: mode 0600, well-formed
            act(f"kept database key '{label}' ({provider.describe(label)})")
        else:
            provider.key(label, create=True)
            act(f"created database key '{label}' ({provider.describe(label)})")

    # --- TLS client key and CSR ----------------------------------------------------------------------------
    tls_key_path, csr_path = tls_dir / "device.key", tls_dir / "device.csr"
    crt_path, ca_path = tls_dir / "device.crt", tls_dir / "ca.crt"
    if reprovision:
        for p in (tls_key_path, csr_path, crt_path):
            if p.exists():
                shred(p)
    if tls_key_path.exists():
        tls_key = _load_tls_key(tls_key_path)
        act(f"kept TLS client key {tls_key_path}")
    else:
        tls_key = ec.generate_private_key(ec.SECP256R1())
        write_private(tls_key_path, tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        act(f"created TLS client key {tls_key_path} (EC P-256)")
    csr = make_csr(tls_key, device_id)
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    csr_path.chmod(0o644)
    fingerprint = spki_fingerprint(tls_key.public_key())
    result.tls = {"key": str(tls_key_path), "csr": str(csr_path), "cn": device_id, "spki_sha256": fingerprint}

    # Check the CA and the certificate completely before installing either: never a half-installed pair.
    ca = _load_cert(ca_file, "CA certificate") if ca_file is not None else None
    if ca is not None and ca_path.exists() and ca_path.read_bytes() != Path(ca_file).read_bytes() and not force:
        raise ProvisionError(f"a different broker CA is installed in {ca_path}; use --force to replace it")
    cert = _load_cert(cert_file, "client certificate") if cert_file is not None else None
    if cert is not None:
        if _cn(cert) != device_id:
            raise ProvisionError(f"certificate {cert_file} is for CN '{_cn(cert)}', not this device '{device_id}'")
        if spki_fingerprint(cert.public_key()) != fingerprint:
            raise ProvisionError(f"certificate {cert_file} does not match this device's TLS key (another CSR?)")
        issuer = ca or (_load_cert(ca_path, "CA certificate") if ca_path.exists() else None)
        if issuer is not None:
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                raise ProvisionError(f"certificate {cert_file} was not issued by the CA {_cn(issuer)!r}") from None
    if ca is not None:
        shutil.copyfile(ca_file, ca_path)
        ca_path.chmod(0o644)
        act(f"installed broker CA {ca_path} ({_cn(ca)})")
    if cert is not None:
        replacing = crt_path.exists() and crt_path.read_bytes() != Path(cert_file).read_bytes()
        shutil.copyfile(cert_file, crt_path)
        crt_path.chmod(0o644)
        act(f"{'replaced' if replacing else 'installed'} client certificate {crt_path}")
        result.tls["certificate"] = str(crt_path)
        result.tls["not_after"] = cert.not_valid_after_utc.isoformat()

    # --- the console's HTTPS certificate, when a tablet reaches it over the van's network -------------------
    bind = config.console.bind
    ours = config.console.tls_cert == tls_dir / "console.crt"  # not a certificate the force installed itself
    if not is_loopback(bind) and ours:
        made = ensure_console_certificate(tls_dir, bind, device_id, force=reprovision)
        act(made.action)
        console["tls_cert"], console["tls_key"] = str(made.cert), str(made.key)
        result.console = {"url": f"https://{bind}:{config.console.port}/", "certificate": str(made.cert),
                          "sha256": made.sha256, "not_after": made.not_after}

    # --- the configuration file --------------------------------------------------------------------------
    mqtt = data.setdefault("mqtt", {})
    mqtt["broker"] = broker
    mqtt["ca_file"] = str(ca_path)
    mqtt["cert_file"] = str(crt_path)
    mqtt["key_file"] = str(tls_key_path)
    wl = data.setdefault("watchlist", {})
    wl["control_room_key"] = str(pin)
    wl["device_key"] = str(keys_dir / "device.x25519.key")
    user = _service_user(owner)
    _write_config(config_path, data, user.pw_gid if user else None)
    act(f"wrote {config_path}")
    if user is not None:
        _chown_tree(data_dir, user)
        act(f"{data_dir} owned by {user.pw_name}")

    if not crt_path.exists():
        result.next_steps.append(
            f"have the broker CA sign {csr_path} (CN={device_id}), then run provision again with "
            f"--cert DEVICE.crt --ca CA.crt"
        )
    elif not ca_path.exists():
        result.next_steps.append("run provision again with --ca CA.crt (the broker's CA certificate)")
    result.next_steps.append(f"appliance selftest --config {config_path}")
    return result


def format_result(r: ProvisionResult) -> str:
    lines = [f"device {r.device_id} provisioned; config {r.config_path}; data {r.data_dir}", ""]
    lines += [f"  {a}" for a in r.actions]
    lines += ["", "Give these to the control room (public, safe to send):"]
    lines.append(f"  watchlist encryption key (X25519)  key id {r.public_keys['x25519']['key_id']}")
    lines += ["    " + line for line in r.public_keys["x25519"]["pem"].strip().splitlines()]
    lines.append(f"  device identity key (Ed25519)      key id {r.public_keys['ed25519']['key_id']}")
    lines += ["    " + line for line in r.public_keys["ed25519"]["pem"].strip().splitlines()]
    lines.append(f"  TLS client key SHA-256 fingerprint (SPKI) {r.tls['spki_sha256']}")
    lines.append(f"  certificate signing request        {r.tls['csr']} (CN={r.tls['cn']})")
    lines.append(f"  pinned control-room key            key id {r.control_room['key_id']}")
    if "certificate" in r.tls:
        lines.append(f"  client certificate                 {r.tls['certificate']} (until {r.tls['not_after']})")
    if r.console:
        lines += ["", f"Console for the tablet: {r.console['url']}",
                  f"  certificate SHA-256 fingerprint    {r.console['sha256']} (check it on the tablet the first time)"]
    lines += ["", "Next:"] + [f"  {s}" for s in r.next_steps]
    return "\n".join(lines)
