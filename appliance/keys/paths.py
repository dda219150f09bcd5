"""Where this device's key files are, from the configuration (written at provisioning: docs/provisioning.md).

Low in the layers on purpose: the watchlist receiver, the outbox publisher (receipts), the command handler
and the audit chain all read the same files, and none of them should reach into another to find them.
"""

from __future__ import annotations

from pathlib import Path

from appliance.config import Config


def keys_dir(config: Config) -> Path:
    return config.storage.keys_dir or (config.device.data_dir / "keys")


def control_room_key_path(config: Config) -> Path:
    """The pinned control-room Ed25519 public key: bundles, commands and receipts count only if it signed them."""
    return config.watchlist.control_room_key or keys_dir(config) / "control-room.ed25519.pub"


def device_key_path(config: Config) -> Path:
    """The device's X25519 private key: watchlist bundles are encrypted to it."""
    return config.watchlist.device_key or keys_dir(config) / "device.x25519.key"


def identity_key_path(config: Config) -> Path:
    """The device's Ed25519 identity private key (signs the audit chain and what the van sends)."""
    return keys_dir(config) / "device.ed25519.key"


def identity_public_path(config: Config) -> Path:
    return keys_dir(config) / "device.ed25519.pub"
