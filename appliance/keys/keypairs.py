"""Key pairs: the control room's Ed25519 signing key, and a device's X25519 (encryption) + Ed25519 (identity).

Private keys are PKCS#8 PEM files at mode 0600, public keys SubjectPublicKeyInfo PEM. A key id is the first
16 hex digits of SHA-256 over the raw public key; it names keys in bundles and messages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from appliance.errors import KeyMaterialError
from appliance.keys.files import read_private, write_private, write_public

CONTROL_ROOM = "control-room"


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | X25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class WrittenKey:
    kind: str  # "ed25519" or "x25519"
    private_path: Path
    public_path: Path
    key_id: str


def _write_pair(out_dir: Path, name: str, kind: str, private) -> WrittenKey:
    priv = Path(out_dir) / f"{name}.{kind}.key"
    pub = Path(out_dir) / f"{name}.{kind}.pub"
    for p in (priv, pub):
        if p.exists():
            raise KeyMaterialError(f"{p} already exists; refusing to overwrite a key")
    write_private(priv, _private_pem(private))
    write_public(pub, _public_pem(private.public_key()))
    return WrittenKey(kind, priv, pub, key_id(private.public_key()))


def generate_control_room(out_dir: Path, name: str = CONTROL_ROOM) -> list[WrittenKey]:
    """The control room's signing pair: `<name>.ed25519.key` (0600) and `<name>.ed25519.pub`."""
    return [_write_pair(out_dir, name, "ed25519", Ed25519PrivateKey.generate())]


def generate_device(out_dir: Path, name: str = "device") -> list[WrittenKey]:
    """A device's X25519 pair (bundles are encrypted to it) and Ed25519 pair (its identity)."""
    return [
        _write_pair(out_dir, name, "x25519", X25519PrivateKey.generate()),
        _write_pair(out_dir, name, "ed25519", Ed25519PrivateKey.generate()),
    ]


def _load_private(path: Path, cls):
    data = read_private(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyMaterialError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, cls):
        raise KeyMaterialError(f"{path} holds a {type(key).__name__.replace('PrivateKey', '')} key, not {cls.__name__}")
    return key


def _load_public(path: Path, cls):
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyMaterialError(f"public key file {path} not found") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyMaterialError(f"{path} is not a PEM public key") from None
    if not isinstance(key, cls):
        raise KeyMaterialError(f"{path} is not a {cls.__name__}")
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    return _load_private(path, Ed25519PrivateKey)


def load_verify_key(path: Path) -> Ed25519PublicKey:
    return _load_public(path, Ed25519PublicKey)


def load_device_private(path: Path) -> X25519PrivateKey:
    return _load_private(path, X25519PrivateKey)


def load_device_public(path: Path) -> X25519PublicKey:
    return _load_public(path, X25519PublicKey)


def describe(path: Path) -> str:
    """One line: the kind of key in a PEM file and its key id (never prints private material)."""
    path = Path(path)
    for loader, kind in (
        (load_verify_key, "Ed25519 public"),
        (load_device_public, "X25519 public"),
    ):
        try:
            return f"{kind:16} {key_id(loader(path))}  {path}"
        except KeyMaterialError:
            pass
    for loader, kind in ((load_signing_key, "Ed25519 private"), (load_device_private, "X25519 private")):
        try:
            return f"{kind:16} {key_id(loader(path).public_key())}  {path}"
        except KeyMaterialError as e:
            last = e
    raise last
