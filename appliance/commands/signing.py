"""Signed commands (appliance/schemas/command.json): built and signed by the control room, checked by the van.

The signature covers the whole `command` object: its type, target device, issue and expiry times, a random
nonce and its arguments. The van accepts a command only when it is signed by the pinned control-room key,
names this device, is inside its validity window (with a small clock allowance), and its nonce was never seen.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.audit.chain import canonical
from appliance.commands.types import CommandBody, CommandEnvelope
from appliance.events.models import new_event_id
from appliance.keys.keypairs import key_id
from appliance.message_kinds import COMMAND
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import iso, parse_time, utcnow

SCHEMA = COMMAND.schema
TYPES = ("revoke_watchlist", "end_deployment", "start_deployment")
_DOMAIN = b"lfr-command/1\n"


class CommandRefused(Exception):
    """A command that is not executed; `reason` is one of command_ack.json's reasons."""

    def __init__(self, reason: str, detail: str, command: dict | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.command = command  # the (unverified) command object, when one could be read


@dataclass(frozen=True)
class Command:
    id: str
    type: str
    device_id: str
    issued_at: datetime
    expires_at: datetime
    nonce: str
    args: dict
    key_id: str


def build_command(kind: str, device_id: str, args: dict | None = None, *, lifetime_s: int = 600,
                  now: datetime | None = None) -> CommandBody:
    if kind not in TYPES:
        raise ValueError(f"command type must be one of {TYPES}")
    now = now or utcnow()
    return {"id": new_event_id(), "type": kind, "device_id": device_id, "issued_at": iso(now),
            "expires_at": iso(now + timedelta(seconds=lifetime_s)), "nonce": os.urandom(16).hex(),
            "args": dict(args or {})}


def sign_command(private_key: Ed25519PrivateKey, command: CommandBody) -> CommandEnvelope:
    """The envelope published on the device's commands topic."""
    return {"schema": SCHEMA, "command": command, "key_id": key_id(private_key.public_key()),
            "sig": base64.b64encode(private_key.sign(_DOMAIN + canonical(command))).decode("ascii")}


def verify_envelope(envelope, verify_key: Ed25519PublicKey, device_id: str, *, now: datetime | None = None,
                    max_lifetime_s: int = 3600, clock_skew_s: int = 300) -> Command:
    """The verified command, or CommandRefused. Does not check the nonce (the handler's store does)."""
    now = now or utcnow()
    command = envelope.get("command") if isinstance(envelope, dict) else None
    command = command if isinstance(command, dict) else None
    if isinstance(envelope, dict) and command is not None and not envelope.get("sig"):
        raise CommandRefused("unsigned", "the command carries no signature", command)
    err = first_error("command", envelope)
    if err:
        raise CommandRefused("malformed", err, command)
    if envelope["key_id"] != key_id(verify_key):
        raise CommandRefused("unknown_key", f"signed by key {envelope['key_id']}, not the pinned control-room key "
                             f"{key_id(verify_key)}", command)
    try:
        verify_key.verify(base64.b64decode(envelope["sig"], validate=True), _DOMAIN + canonical(command))
    except (InvalidSignature, ValueError):
        raise CommandRefused("bad_signature", "the signature does not verify with the pinned control-room key",
                             command) from None
    if command["device_id"] != device_id:
        raise CommandRefused("wrong_device", f"the command is for device {command['device_id']}", command)
    issued, expires = parse_time(command["issued_at"]), parse_time(command["expires_at"])
    skew = timedelta(seconds=clock_skew_s)
    if expires - issued > timedelta(seconds=max_lifetime_s):
        raise CommandRefused("lifetime_too_long", f"valid for more than {max_lifetime_s} s (commands.max_lifetime_s)",
                             command)
    if issued > now + skew:
        raise CommandRefused("not_yet_valid", f"issued at {command['issued_at']}, in the future", command)
    if now > expires + skew:
        raise CommandRefused("expired", f"expired at {command['expires_at']}", command)
    return Command(command["id"], command["type"], command["device_id"], issued, expires, command["nonce"],
                   command["args"], envelope["key_id"])
