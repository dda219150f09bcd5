"""The control room's side: sign a command, publish it to a van, and wait for the van's ack."""

from __future__ import annotations

import contextlib
import json
import queue
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.commands.signing import build_command, sign_command
from appliance.commands.types import CommandAck, CommandEnvelope
from appliance.errors import SyncError
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings
from appliance.sync.payloads import PayloadError, parse_json


class CommandSender:
    """One connection to the broker as the control room; send() returns the van's ack (a dict)."""

    def __init__(self, settings: MqttSettings, signing_key: Ed25519PrivateKey):
        self.key = signing_key
        self._acks: queue.Queue = queue.Queue()
        self.conn = MqttConnection(settings, on_message=self._on_ack, clean_start=True)

    def connect(self) -> CommandSender:
        self.conn.connect()
        self.conn.subscribe(f"{topics.PREFIX}/+/commands/ack")
        return self

    def _on_ack(self, message) -> None:
        with contextlib.suppress(PayloadError):
            ack = parse_json(message.payload, max_bytes=64 * 1024, max_depth=6, what="ack")
            if isinstance(ack, dict):
                self._acks.put(ack)

    def send_envelope(self, device_id: str, envelope: CommandEnvelope | dict | bytes, *,
                      timeout: float = 15.0) -> CommandAck:
        """Publish as given (tests use this to send forged or replayed envelopes) and wait for the ack."""
        data = envelope if isinstance(envelope, bytes) else json.dumps(envelope)
        self.conn.publish(topics.commands(device_id), data, qos=1).wait(timeout)
        command_id = envelope.get("command", {}).get("id") if isinstance(envelope, dict) else None
        return self.wait_ack(device_id, command_id, timeout=timeout)

    def send(self, device_id: str, kind: str, args: dict | None = None, *, lifetime_s: int = 600,
             timeout: float = 15.0) -> CommandAck:
        envelope = sign_command(self.key, build_command(kind, device_id, args, lifetime_s=lifetime_s))
        return self.send_envelope(device_id, envelope, timeout=timeout)

    def wait_ack(self, device_id: str, command_id: str | None, *, timeout: float = 15.0) -> CommandAck:
        """The van's ack as it arrived (a JSON object; the van built it against command_ack.json)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyncError(f"no ack from {device_id} within {timeout:.0f} s")
            try:
                ack = self._acks.get(timeout=left)
            except queue.Empty:
                continue
            # A refused message may carry no readable command id: it answers the last one sent.
            mine = command_id is None or ack.get("command_id") in (command_id, None)
            if ack.get("device_id") == device_id and mine:
                return ack

    def close(self) -> None:
        self.conn.close()
