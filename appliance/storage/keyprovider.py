"""Where database keys come from: a key file, the Raspberry Pi OTP private key, or an environment variable.

Every provider hands out one 256-bit key per database *label* (the database file's stem, e.g. "watchlist").
Keys are independent per label, so destroying one label's key crypto-erases that database alone.

- KeyFileProvider: a random key per label in `<keys_dir>/<label>.key` (hex, mode 0600, refused if looser),
  written when the database is first created (provisioning).
- RpiOtpKeyProvider: the device-unique secret in the Pi's OTP (`rpi-otp-private-key`), which never leaves
  the board, combined by HKDF with a random per-label salt file. The OTP cannot be erased, so destroying the
  salt file is the crypto-erase.
- EnvKeyProvider: a 64-hex-digit master key in an environment variable, for development only. It cannot be
  destroyed by the appliance.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import KeyMaterialError
from appliance.keys.files import read_private, shred, write_private

KEY_BYTES = 32
_LABEL = re.compile(r"^[a-z0-9_-]{1,64}$")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


def _check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise KeyMaterialError(f"bad database key label {label!r} (lower-case letters, digits, - and _)")
    return label


def _derive(master: bytes, label: str, salt: bytes | None = None) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"lfr-appliance/storage/v1/" + label.encode()
    ).derive(master)


def _parse_hex_key(text: str, origin: str) -> bytes:
    text = text.strip()
    if not _HEX_KEY.match(text):
        raise KeyMaterialError(f"{origin} does not hold a 256-bit key (expected 64 hex digits)")
    return bytes.fromhex(text)


class KeyProvider(ABC):
    """One interface for every source of database keys."""

    #: short human description for messages, e.g. "key file /var/lib/appliance/keys/watchlist.key"
    @abstractmethod
    def describe(self, label: str) -> str: ...

    @abstractmethod
    def has_key(self, label: str) -> bool:
        """Whether a key for this label exists already (False: never provisioned, or erased)."""

    @abstractmethod
    def key(self, label: str, *, create: bool = False) -> bytes:
        """The 32-byte key for `label`; `create` provisions a new one when none exists.

        Raises KeyMaterialError with one line when the key is missing, malformed or badly protected.
        """

    @abstractmethod
    def destroy(self, label: str) -> str:
        """Destroy the key for `label` (crypto-erase). Returns what was done, in one line."""


class KeyFileProvider(KeyProvider):
    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)

    def path(self, label: str) -> Path:
        return self.keys_dir / f"{_check_label(label)}.key"

    def describe(self, label: str) -> str:
        return f"key file {self.path(label)}"

    def has_key(self, label: str) -> bool:
        return self.path(label).exists()

    def key(self, label: str, *, create: bool = False) -> bytes:
        path = self.path(label)
        if not path.exists():
            if not create:
                raise KeyMaterialError(f"key file {path} not found (never provisioned, or erased)")
            write_private(path, os.urandom(KEY_BYTES).hex().encode() + b"\n")
        return _parse_hex_key(read_private(path).decode("ascii", "replace"), f"key file {path}")

    def destroy(self, label: str) -> str:
        path = self.path(label)
        return f"destroyed {path}" if shred(path) else f"no key file at {path}"


class RpiOtpKeyProvider(KeyProvider):
    """The Pi's OTP private key (customer key) plus a random salt file per label."""

    TOOL = "rpi-otp-private-key"

    def __init__(self, keys_dir: Path, tool: str | None = None):
        self.keys_dir = Path(keys_dir)
        self.tool = tool or self.TOOL
        self._otp: bytes | None = None

    def salt_path(self, label: str) -> Path:
        return self.keys_dir / f"{_check_label(label)}.salt"

    def describe(self, label: str) -> str:
        return f"Raspberry Pi OTP private key with salt {self.salt_path(label)}"

    def has_key(self, label: str) -> bool:
        return self.salt_path(label).exists()

    def _read_otp(self) -> bytes:
        if self._otp is None:
            if shutil.which(self.tool) is None:
                raise KeyMaterialError(f"{self.tool} not found: this is not a Raspberry Pi with OTP key support")
            try:
                out = subprocess.run([self.tool], capture_output=True, text=True, timeout=10, check=True).stdout
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
                raise KeyMaterialError(f"could not read the OTP private key with {self.tool}: {e}") from None
            hexkey = "".join(out.split())
            if not re.fullmatch(r"[0-9a-fA-F]{64,128}", hexkey):
                raise KeyMaterialError(f"{self.tool} printed no key (expected hex)")
            otp = bytes.fromhex(hexkey)
            if not any(otp):
                raise KeyMaterialError("the OTP private key is not programmed (all zeros); provision it first")
            self._otp = otp
        return self._otp

    def key(self, label: str, *, create: bool = False) -> bytes:
        salt_path = self.salt_path(label)
        otp = self._read_otp()
        if not salt_path.exists():
            if not create:
                raise KeyMaterialError(f"salt file {salt_path} not found (never provisioned, or erased)")
            write_private(salt_path, os.urandom(KEY_BYTES).hex().encode() + b"\n")
        salt = _parse_hex_key(read_private(salt_path).decode("ascii", "replace"), f"salt file {salt_path}")
        return _derive(otp, label, salt)

    def destroy(self, label: str) -> str:
        path = self.salt_path(label)
        return f"destroyed {path} (the OTP key alone cannot decrypt)" if shred(path) else f"no salt file at {path}"


class EnvKeyProvider(KeyProvider):
    """Development only: a master key in an environment variable, one derived key per label."""

    def __init__(self, var: str = "APPLIANCE_DB_KEY"):
        self.var = var

    def describe(self, label: str) -> str:
        return f"environment variable {self.var}"

    def has_key(self, label: str) -> bool:
        return bool(os.environ.get(self.var))

    def key(self, label: str, *, create: bool = False) -> bytes:
        value = os.environ.get(self.var)
        if not value:
            raise KeyMaterialError(f"environment variable {self.var} is not set (64 hex digits)")
        return _derive(_parse_hex_key(value, f"environment variable {self.var}"), _check_label(label))

    def destroy(self, label: str) -> str:
        return f"the key in ${self.var} cannot be destroyed by the appliance; unset it and discard it"


def key_provider_from_config(config) -> KeyProvider:
    """The provider named in `[storage]` of the appliance config (see StorageConfig)."""
    storage = config.storage
    keys_dir = storage.keys_dir or (config.device.data_dir / "keys")
    if storage.key_provider == "file":
        return KeyFileProvider(keys_dir)
    if storage.key_provider == "rpi-otp":
        return RpiOtpKeyProvider(keys_dir)
    if storage.key_provider == "env":
        return EnvKeyProvider(storage.key_env)
    raise KeyMaterialError(f"unknown key provider {storage.key_provider!r}")  # pragma: no cover - pydantic guards
