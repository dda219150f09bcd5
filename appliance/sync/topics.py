"""The MQTT topic table (contract; see the design's MQTT section). Suffixes come from the message-kind registry
(appliance/message_kinds.py); the functions below name the ones code publishes or subscribes to by hand."""

from __future__ import annotations

import re

from appliance import message_kinds as kinds

PREFIX = "lfr/v1/devices"
_DEVICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _dev(device: str) -> str:
    if not _DEVICE.match(device):
        raise ValueError(f"bad device id {device!r}")
    return f"{PREFIX}/{device}"


def topic(device: str, suffix: str) -> str:
    """lfr/v1/devices/{device}/{suffix}, e.g. topic("van-01", kinds.ALERT.topic)."""
    return f"{_dev(device)}/{suffix}"


def status(device: str) -> str:
    return topic(device, kinds.STATUS.topic)


def alerts(device: str) -> str:
    return topic(device, kinds.ALERT.topic)


def decisions(device: str) -> str:
    return topic(device, kinds.DECISION.topic)


def deployments(device: str) -> str:
    return topic(device, kinds.DEPLOYMENT.topic)


def watchlist_ack(device: str) -> str:
    return topic(device, kinds.WATCHLIST_ACK.topic)


def watchlist_bundles(device: str) -> str:
    return topic(device, kinds.WATCHLIST_BUNDLE.topic)


def commands(device: str) -> str:
    return topic(device, kinds.COMMAND.topic)


def commands_ack(device: str) -> str:
    """Device -> control room: the answer to each signed command (appliance/schemas/command_ack.json)."""
    return topic(device, kinds.COMMAND_ACK.topic)


def audit_head(device: str) -> str:
    """Device -> control room (retained): the newest entry of the audit chain (seq, hash, signature)."""
    return topic(device, kinds.AUDIT_HEAD.topic)


def receipts(device: str) -> str:
    """Control room -> device: the highest outbox sequence number the receiver has stored (docs/events.md)."""
    return topic(device, kinds.RECEIPT.topic)
