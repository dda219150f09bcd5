"""The van's side of signed commands: verify, refuse replays, run the action, audit, and answer with an ack.

Every message on the commands topic gets an ack (appliance/schemas/command_ack.json) and an audit entry:
`command.refused` (with the reason; nothing was done) or `command.accepted` (before the action runs, with
its nonce stored in the same transaction, so a crash mid-action can never let the same command run twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from appliance.commands.signing import Command, CommandRefused, verify_envelope
from appliance.commands.tables import COMMAND_NONCES_SCHEMA
from appliance.commands.types import ActionResult, CommandAck
from appliance.message_kinds import COMMAND_ACK
from appliance.sync.payloads import PayloadError, parse_json
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import iso, utcnow

log = logging.getLogger(__name__)
ACK_SCHEMA = COMMAND_ACK.schema
MAX_COMMAND_BYTES = 16 * 1024  # a signed command is well under 2 KB
MAX_COMMAND_DEPTH = 6          # envelope > command > args > location: 4

Action = Callable[[Command], ActionResult | None]


class ActionFailed(Exception):
    """An accepted command whose action did not complete; `result` says what did."""

    def __init__(self, detail: str, result: ActionResult | None = None):
        super().__init__(detail)
        self.detail = detail
        self.result = result


class CommandHandler:
    RELOADABLE = frozenset({"max_lifetime_s", "clock_skew_s"})  # both read per command

    def update_config(self, config) -> None:
        """A new CommandsConfig, used from the next command (one reference swap)."""
        self.config = config

    def __init__(self, *, device_id: str, verify_key, events, audit, actions: dict[str, Action], config,
                 clock: Callable[[], datetime] = utcnow):
        self.device_id = device_id
        self.verify_key = verify_key  # the control room's Ed25519 key pinned at provisioning
        self.events = events
        events.ensure_schema(COMMAND_NONCES_SCHEMA)  # this package's table, whoever opened the database
        self.audit = audit
        self.actions = actions
        self.config = config  # CommandsConfig
        self.clock = clock

    def handle(self, raw: bytes | str) -> CommandAck:
        """Process one message from the commands topic; returns the ack payload to publish. Never raises:
        whatever the bytes, the answer is an ack (done, refused with a reason, or failed)."""
        try:
            return self._handle(raw)
        except Exception as e:  # a bug, or a store that failed: still answer, so the topic never stalls
            log.exception("command handling failed")
            return self._ack("failed", None, None, "action_failed", f"{type(e).__name__}: {str(e)[:200]}", None)

    def _handle(self, raw: bytes | str) -> CommandAck:
        now = self.clock()
        envelope = None
        try:
            try:
                envelope = parse_json(raw, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_COMMAND_DEPTH, what="command")
            except PayloadError as e:
                raise CommandRefused("malformed", str(e)) from None
            cmd = verify_envelope(envelope, self.verify_key, self.device_id, now=now,
                                  max_lifetime_s=self.config.max_lifetime_s, clock_skew_s=self.config.clock_skew_s)
            self._accept(cmd, now)
        except CommandRefused as e:
            return self._refused(e, envelope)
        actor = f"control-room:{cmd.key_id}"
        action = self.actions.get(cmd.type)
        try:
            if action is None:
                raise CommandRefused("not_applicable", f"this device does not carry out {cmd.type}")
            result = action(cmd) or {}
        except CommandRefused as e:
            self.audit.record("command.refused", actor, {"command_id": cmd.id, "type": cmd.type,
                                                         "reason": e.reason, "detail": e.detail[:300]})
            log.warning("command %s (%s) not applicable: %s", cmd.id, cmd.type, e.detail)
            return self._ack("refused", cmd.id, cmd.type, e.reason, e.detail, None)
        except ActionFailed as e:
            self.audit.record("command.failed", actor,
                              {"command_id": cmd.id, "type": cmd.type, "detail": e.detail[:300]})
            log.error("command %s (%s) failed: %s", cmd.id, cmd.type, e.detail)
            return self._ack("failed", cmd.id, cmd.type, "action_failed", e.detail, e.result)
        except Exception as e:
            log.exception("command %s (%s) failed", cmd.id, cmd.type)
            self.audit.record("command.failed", actor, {"command_id": cmd.id, "type": cmd.type, "detail": str(e)[:300]})
            return self._ack("failed", cmd.id, cmd.type, "action_failed", str(e), None)
        log.info("command %s (%s) done", cmd.id, cmd.type)
        return self._ack("done", cmd.id, cmd.type, None, None, result)

    def _accept(self, cmd: Command, now: datetime) -> None:
        with self.events.transaction() as db:
            # Nonces of expired commands are no longer needed: the expiry alone refuses those.
            db.conn.execute("DELETE FROM command_nonces WHERE expires_at < ?",
                            (iso(now - timedelta(seconds=self.config.clock_skew_s)),))
            if db.conn.execute("SELECT 1 FROM command_nonces WHERE nonce = ?", (cmd.nonce,)).fetchone():
                raise CommandRefused("replayed", f"command {cmd.id} (nonce {cmd.nonce[:8]}…) was already received")
            db.conn.execute("INSERT INTO command_nonces (nonce, command_id, type, seen_at, expires_at) "
                            "VALUES (?, ?, ?, ?, ?)", (cmd.nonce, cmd.id, cmd.type, iso(now), iso(cmd.expires_at)))
            self.audit.append_in(db, "command.accepted", f"control-room:{cmd.key_id}",
                                 {"command_id": cmd.id, "type": cmd.type, "issued_at": iso(cmd.issued_at),
                                  "expires_at": iso(cmd.expires_at), "args": cmd.args})

    def _refused(self, e: CommandRefused, env) -> CommandAck:
        """Refuse, audit and ack. `env` is the already parsed envelope (None if it did not parse): the raw bytes
        are never parsed twice."""
        cmd = e.command or {}
        cid = cmd.get("id") if isinstance(cmd.get("id"), str) else None
        ctype = cmd.get("type") if isinstance(cmd.get("type"), str) else None
        claimed = env.get("key_id") if isinstance(env, dict) and isinstance(env.get("key_id"), str) else None
        actor = f"claimed:control-room:{claimed[:16]}" if claimed else "unknown"
        self.audit.record("command.refused", actor, {"command_id": (cid or "")[:64] or None,
                                                     "type": (ctype or "")[:64] or None, "reason": e.reason,
                                                     "detail": e.detail[:300]})
        log.warning("command refused (%s): %s", e.reason, e.detail)
        return self._ack("refused", cid, ctype, e.reason, e.detail, None)

    def _ack(self, status, command_id, ctype, reason, detail, result) -> CommandAck:
        ack: CommandAck = {
            "schema": ACK_SCHEMA, "device_id": self.device_id, "time": iso(self.clock()), "status": status,
            "command_id": (command_id or "")[:64] or None, "type": (ctype or "")[:64] or None, "reason": reason,
            "detail": detail[:500] if detail else None, "result": result}
        err = first_error("command_ack", ack)
        if err:  # a bug: still answer, without the part that broke the schema
            log.error("command ack invalid (%s); sending it without its result", err)
            ack["result"] = None
        return ack
