"""The audit log of this device, built from the configuration: the events store and the identity key."""

from __future__ import annotations

from pathlib import Path

from appliance.audit.chain import AuditLog, AuditSigner


def keys_dir(config) -> Path:
    return config.storage.keys_dir or (config.device.data_dir / "keys")


def identity_key_path(config) -> Path:
    """The device's Ed25519 identity private key, written at provisioning (keys/device.ed25519.key)."""
    return keys_dir(config) / "device.ed25519.key"


def identity_public_path(config) -> Path:
    return keys_dir(config) / "device.ed25519.pub"


def open_audit(config, events) -> AuditLog:
    """An AuditLog over `events` (an EventStore) signing with this device's identity key."""
    return AuditLog(events, AuditSigner.from_file(identity_key_path(config)), config.device.id)

