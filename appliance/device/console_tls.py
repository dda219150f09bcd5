"""The console's HTTPS certificate, for a console that a tablet reaches over the van's network.

Made at provisioning, on the device: an EC P-256 key that never leaves it and a self-signed certificate
naming the address the console listens on. The tablet trusts it by its SHA-256 fingerprint, which
`appliance provision` prints (or a force can sign a CSR for it instead; a certificate given in the config is
used as it is). Kept across runs while it still names the address and has a month of validity left.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.keys.files import shred, write_private

VALID_DAYS = 825  # the longest validity browsers accept for a server certificate
RENEW_BEFORE = timedelta(days=30)


@dataclass
class ConsoleCertificate:
    cert: Path
    key: Path
    sha256: str  # of the DER certificate, colon-separated: what a browser shows as its fingerprint
    not_after: str
    action: str


def _subject_alt_name(address: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        return x509.DNSName(address)


def sha256_fingerprint(data: bytes) -> str:
    """SHA-256 as colon-separated upper-case hex, the way browsers and openssl show fingerprints."""
    digest = hashlib.sha256(data).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprint(cert: x509.Certificate) -> str:
    return sha256_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def _names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def ensure_console_certificate(tls_dir: Path, address: str, device_id: str, *, force: bool = False,
                               now: datetime | None = None) -> ConsoleCertificate:
    """The console key and certificate in `tls_dir` for `address`: kept if still good, else made anew."""
    now = now or datetime.now(timezone.utc)
    cert_path, key_path = tls_dir / "console.crt", tls_dir / "console.key"
    if not force and cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if address in _names(cert) and cert.not_valid_after_utc - now > RENEW_BEFORE:
            return ConsoleCertificate(cert_path, key_path, fingerprint(cert), cert.not_valid_after_utc.isoformat(),
                                      f"kept console certificate {cert_path}")
        why = f"it does not name {address}" if address not in _names(cert) else "it expires within 30 days"
    else:
        why = "--force" if cert_path.exists() else ""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{device_id} console")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_subject_alt_name(address)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if key_path.exists():
        shred(key_path)  # the old key goes for good; a rerun after a crash here just makes a new pair
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)
    action = f"created console certificate {cert_path} for {address}" + (f" (replaced: {why})" if why else "")
    return ConsoleCertificate(cert_path, key_path, fingerprint(cert), cert.not_valid_after_utc.isoformat(), action)
