"""The control-room receiver: subscribe to every van, validate, de-duplicate, store, print, and send receipts.

    rx = ControlReceiver(settings, ControlStore(open_control_db(path)), out=print).start()

Each payload is checked against its JSON Schema (appliance/schemas/) and against the topic's device; an
invalid one is refused with one line and never stored. Alerts, decisions and deployment events are stored
once by event id. For vans that ask for receipts (MQTT v5 user property lfr-receipts = 1), events are
stored strictly in the van's outbox order: a duplicate is ignored, an event after a gap is not stored
and the receipt tells the van where the gap starts, so it sends again from there. The receipt on
lfr/v1/devices/{device}/receipts names the highest sequence number stored in order; it is sent only
after the commit. Lines never show a crop or any image data.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import message_kinds as kinds
from appliance.control.store import ControlStore
from appliance.events.models import iso_ms, utc_now_iso
from appliance.events.publisher import (
    PROP_BASE,
    PROP_RECEIPTS,
    PROP_SEQ,
    PROP_STREAM,
    receipts_topic,
)
from appliance.events.receipts import sign_receipt, unsigned_receipt
from appliance.events.schemas import TOPIC_KIND, payload_error
from appliance.storage import write_transaction
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings
from appliance.sync.payloads import PayloadError, parse_json
from appliance.watchlist.schemas import first_error

log = logging.getLogger(__name__)

SUBSCRIPTION = f"{topics.PREFIX}/+/#"
HELLO_DAYS = 30  # on connect, receipts go to vans heard from within this many days
_TOPIC = re.compile(rf"^{re.escape(topics.PREFIX)}/([A-Za-z0-9_.-]{{1,64}})/(.+)$")
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024  # an alert with its crop is ~20-60 KB
MAX_PAYLOAD_DEPTH = 8
# appliance/decisions/confirmation.py's states, as the decision lines say them.
OUTCOME_WORDS = {"awaiting_second": "awaiting a second officer",
                 "disputed": "disputed (confirmed and rejected by different officers)"}


class Refused(ValueError):
    """A payload that is not stored; the message is the one line printed."""


def _props(message) -> dict[str, str]:
    props = getattr(message, "properties", None)
    return dict(getattr(props, "UserProperty", None) or [])


def _int(value: str | None) -> int | None:
    """A sequence number from a user property: an int SQLite can hold, or None."""
    try:
        n = int(value) if value is not None and len(value) <= 20 else None
    except ValueError:
        return None
    return n if n is not None and 0 <= n < 2**63 else None


class ControlReceiver:
    def __init__(self, settings: MqttSettings, store: ControlStore, *, out: Callable[[str], None] = print,
                 receipts: bool = True, signing_key: Ed25519PrivateKey | None = None,
                 crop_days: float | None = 31.0):
        """signing_key: the control room's Ed25519 key (the one vans pin): receipts are signed (lfr.receipt/2).
        Without it they go out unsigned (lfr.receipt/1), which a van with a pinned key ignores."""
        self.settings = settings
        self.store = store
        self.out = out
        self.receipts = receipts
        self.signing_key = signing_key
        self.crop_days = crop_days  # crops older than this are purged (the van's retention.crop_days); None: kept
        self._stop = threading.Event()
        self._retention: threading.Thread | None = None
        self.conn: MqttConnection | None = None
        self.stats = {"stored": 0, "duplicates": 0, "gaps": 0, "rejected": 0, "status": 0, "acks": 0, "heads": 0}
        self._last_state: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self, timeout: float = 15.0) -> ControlReceiver:
        self.conn = MqttConnection(self.settings, on_message=self.handle, subscriptions=[(SUBSCRIPTION, 1)],
                                   on_link=self._on_link)
        self.conn.connect(timeout)
        if self.crop_days is not None:
            self.purge_crops()
            self._retention = threading.Thread(target=self._retention_loop, name="control-retention", daemon=True)
            self._retention.start()
        return self

    def purge_crops(self, now: datetime | None = None) -> int:
        """Drop crops older than crop_days; one line when any went."""
        if self.crop_days is None:
            return 0
        now = now or datetime.now(timezone.utc)
        n = self.store.purge_crops(iso_ms(now - timedelta(days=self.crop_days)))
        if n:
            self.out(f"{utc_now_iso()} retention: {n} crop(s) older than {self.crop_days:g} days purged")
        return n

    def _retention_loop(self) -> None:
        while not self._stop.wait(3600):
            try:
                self.purge_crops()
            except Exception:  # the store failed: say so, try again next hour
                log.exception("control: crop retention failed")

    def _on_link(self, up: bool, session_present: bool) -> None:
        """On every (re)connect, tell each recently active van where its stream stands (gap = true: publish
        again after `upto`). After a broker crash lost our subscription, vans re-send what went nowhere at
        once instead of after their receipt timeout."""
        if not up or not self.receipts or self.conn is None:
            return
        since = iso_ms(datetime.now(timezone.utc) - timedelta(days=HELLO_DAYS))
        with self.store.lock:
            streams = self.store.streams(since)
        for device, stream, last in streams:
            self._send_receipt(device, stream, last, True)

    def stop(self) -> None:
        self._stop.set()
        if self.conn is not None:
            self.conn.close()

    # -- one message (paho's network thread) --------------------------------------------------------------
    def handle(self, message) -> None:
        """Every message ends stored, refused with a reason (counted, one line), or ignored as a duplicate:
        nothing escapes, whatever its bytes."""
        with self._lock:
            try:
                try:
                    self._handle(message.topic, message.payload, _props(message))
                except (Refused, PayloadError):
                    raise
                except Exception as e:  # e.g. a value SQLite cannot hold: refuse it, do not let it block the stream
                    log.exception("control: a message on %s could not be handled", message.topic)
                    self._refuse_unhandled(message, e)
            except (Refused, PayloadError) as e:
                self.stats["rejected"] += 1
                now = utc_now_iso()
                with self.store.lock, write_transaction(self.store.db):
                    self.store.add_rejected(message.topic, _int(_props(message).get(PROP_SEQ)), str(e), now)
                self.out(f"{now} rejected {message.topic}: {e}")

    def _handle(self, topic: str, raw: bytes, props: dict[str, str]) -> None:
        now = utc_now_iso()
        m = _TOPIC.match(topic)
        if not m:
            raise Refused("not an lfr/v1 device topic")
        device, suffix = m.groups()
        try:
            payload = parse_json(raw, max_bytes=MAX_PAYLOAD_BYTES, max_depth=MAX_PAYLOAD_DEPTH)
        except PayloadError as e:
            self._refuse(str(e), device, props, now)
            return
        if suffix == kinds.WATCHLIST_ACK.topic:
            ack_schema = kinds.WATCHLIST_ACK.schema_file
            err = first_error(ack_schema, payload) if isinstance(payload, dict) else "not a JSON object"
            if err:
                raise Refused(err)
            self.stats["acks"] += 1
            self.out(f"{now} {device} watchlist {payload['status']} {payload['watchlist_id']} "
                     f"v{payload['version']}" + (f" ({payload['reason']})" if payload["reason"] else ""))
            return
        if suffix not in TOPIC_KIND:
            raise Refused(f"unexpected topic suffix {suffix!r}")
        err = payload_error(payload, TOPIC_KIND[suffix])
        if err is None and payload.get("device_id") != device:
            err = f"device_id {payload.get('device_id')!r} does not match the topic's device {device!r}"
        crop = None
        if err is None and suffix == kinds.ALERT.topic and payload.get("crop_jpeg_b64"):
            try:
                crop = base64.b64decode(payload["crop_jpeg_b64"], validate=True)
            except (binascii.Error, ValueError):
                err = "crop_jpeg_b64 is not valid base64"
            if crop is not None and not crop.startswith(b"\xff\xd8\xff"):
                err = "crop_jpeg_b64 is not a JPEG"
        if err:
            self._refuse(err, device, props, now)
            return
        if suffix == kinds.AUDIT_HEAD.topic:
            with self.store.lock, write_transaction(self.store.db):
                went_back = self.store.note_audit_head(device, payload, now)
            self.stats["heads"] += 1
            if went_back is not None:
                self.out(f"{now} {device} WARNING audit log head went back from seq {went_back} to "
                         f"{payload['seq']}: entries were removed or the log restored from an old copy")
            return
        if suffix == kinds.STATUS.topic:
            with self.store.lock, write_transaction(self.store.db):
                self.store.set_status(device, payload, now)
            self.stats["status"] += 1
            if self._last_state.get(device) != payload["state"]:
                self._last_state[device] = payload["state"]
                self.out(self._status_line(now, device, payload))
            return
        self._store_event(kinds.by_topic(suffix).name, device, payload, crop, props, now)

    def _ordered(self, props: dict[str, str]) -> tuple[str, int, int] | None:
        stream, seq = props.get(PROP_STREAM), _int(props.get(PROP_SEQ))
        if not self.receipts or props.get(PROP_RECEIPTS) != "1" or not stream or seq is None:
            return None
        return stream, seq, _int(props.get(PROP_BASE)) or 0

    def _store_event(self, kind: str, device: str, payload: dict, crop: bytes | None, props: dict, now: str) -> None:
        order = self._ordered(props)
        receipt = None
        new = False
        with self.store.lock, write_transaction(self.store.db):
            if order is None:
                new = self.store.insert_event(kind, device, payload, crop, _int(props.get(PROP_SEQ)), now)
            else:
                stream, seq, base = order
                last = max(self.store.last_seq(device, stream) or 0, base)
                if seq <= last:
                    receipt = (stream, last, False)
                elif seq > last + 1:
                    self.stats["gaps"] += 1
                    receipt = (stream, last, True)
                else:
                    new = self.store.insert_event(kind, device, payload, crop, seq, now)
                    self.store.set_last_seq(device, stream, seq, now)
                    receipt = (stream, seq, False)
        # Committed: now it is safe to tell the van and the operator.
        if new:
            self.stats["stored"] += 1
            self.out(self._event_line(now, kind, device, payload) + self._outcome_note(kind, device, payload))
        elif receipt is None or not receipt[2]:
            self.stats["duplicates"] += 1
        if receipt is not None:
            self._send_receipt(device, *receipt)

    def _refuse(self, reason: str, device: str, props: dict, now: str) -> None:
        """Refuse (handle() records and prints it). In an ordered stream an invalid event still advances the
        sequence: it can never become valid, and must not block the events after it."""
        order = self._ordered(props)
        receipt = None
        with self.store.lock, write_transaction(self.store.db):
            if order is not None:
                stream, s, base = order
                last = max(self.store.last_seq(device, stream) or 0, base)
                if s == last + 1:
                    self.store.set_last_seq(device, stream, s, now)
                    receipt = (stream, s, False)
        if receipt is not None:
            self._send_receipt(device, *receipt)
        raise Refused(reason)

    def _refuse_unhandled(self, message, e: Exception) -> None:
        m = _TOPIC.match(message.topic)
        device = m.group(1) if m else None
        reason = f"could not be stored ({type(e).__name__}: {str(e)[:160]})"
        if device is None:
            raise Refused(reason)
        self._refuse(reason, device, _props(message), utc_now_iso())

    def _send_receipt(self, device: str, stream: str, upto: int, gap: bool) -> None:
        if self.conn is None:
            return
        if self.signing_key is not None:
            body = sign_receipt(self.signing_key, device_id=device, stream_id=stream, upto=upto, gap=gap)
        else:
            body = unsigned_receipt(device_id=device, stream_id=stream, upto=upto, gap=gap)
        self.conn.publish(receipts_topic(device), json.dumps(body), qos=1)

    # -- lines ----------------------------------------------------------------------------------------------
    @staticmethod
    def _event_line(now: str, kind: str, device: str, p: dict) -> str:
        if kind == kinds.ALERT.name:
            return (f"{now} {device} alert {p['event_id']} subject {p['subject_id']} ({p['category']}) "
                    f"score {p['score']:.3f} threshold {p['threshold']:.3f} track {p['track_id']} "
                    f"watchlist {p['watchlist_id']} v{p['watchlist_version']} deployment {p['deployment_id'] or '-'} "
                    f"crop {'yes' if p['crop_jpeg_b64'] else 'purged'}")
        if kind == kinds.DECISION.name:
            return (f"{now} {device} decision {p['event_id']} on alert {p['alert_id']}: {p['decision']} "
                    f"by {p['officer_id']}" + (" (with a note)" if p.get("note") else ""))
        d = p["deployment"]
        return f"{now} {device} deployment {d['id']} {p['event']}" + (
            f" ({d.get('end_reason')})" if p["event"] == "ended" else f" by {d['authorised_by']}")

    def _outcome_note(self, kind: str, device: str, p: dict) -> str:
        """After a decision: where its alert stands under the van's rule. In two-officer mode one officer's
        'confirm' leaves it awaiting a second officer, and the line must not read as a confirmation."""
        if kind != kinds.DECISION.name:
            return ""
        state = self.store.alert_outcome(device, p["alert_id"]).state
        return f"; alert {OUTCOME_WORDS.get(state, state)}"

    @staticmethod
    def _status_line(now: str, device: str, p: dict) -> str:
        line = f"{now} {device} status {p['state']}"
        if p["state"] != "offline":
            wl = p.get("watchlist") or {}
            line += (f" fps {p['fps'] if p['fps'] is not None else '-'} watchlist "
                     f"{wl.get('id', '-')} v{wl.get('version', '-')} backlog {p['outbox_backlog']} "
                     f"link {p['link']['state']}")
        elif p.get("detail"):
            line += f" ({p['detail']})"
        return line
