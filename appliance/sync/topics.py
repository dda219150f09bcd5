"""The MQTT topic table (contract; see the design's MQTT section)."""

from __future__ import annotations

import re

PREFIX = "lfr/v1/devices"
_DEVICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _dev(device: str) -> str:
    if not _DEVICE.match(device):
        raise ValueError(f"bad device id {device!r}")
    return f"{PREFIX}/{device}"


def status(device: str) -> str:
    return f"{_dev(device)}/status"


def alerts(device: str) -> str:
    return f"{_dev(device)}/alerts"


def decisions(device: str) -> str:
    return f"{_dev(device)}/decisions"


def deployments(device: str) -> str:
    return f"{_dev(device)}/deployments"


def watchlist_ack(device: str) -> str:
    return f"{_dev(device)}/watchlist/ack"


def watchlist_bundles(device: str) -> str:
    return f"{_dev(device)}/watchlist/bundles"


def commands(device: str) -> str:
    return f"{_dev(device)}/commands"


def commands_ack(device: str) -> str:
    """Device -> control room: the answer to each signed command (appliance/schemas/command_ack.json)."""
    return f"{_dev(device)}/commands/ack"


def audit_head(device: str) -> str:
    """Device -> control room (retained): the newest entry of the audit chain (seq, hash, signature)."""
    return f"{_dev(device)}/audit/head"


def receipts(device: str) -> str:
    """Control room -> device: the highest outbox sequence number the receiver has stored (docs/events.md)."""
    return f"{_dev(device)}/receipts"
