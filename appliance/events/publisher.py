"""Publish the outbox over MQTT v5/TLS, QoS 1, in order; mark rows sent on PUBACK (see docs/events.md).

    pub = OutboxPublisher(store, settings, device_id, status=reporter).start()
    ...
    pub.stop()           # publishes the retained 'offline' status, then disconnects

One thread owns the connection (client id "<device>-events", clean_start=False with a session expiry).
It publishes unsent rows in outbox order, with the row id as a sequence number in MQTT v5 user
properties, and marks a row sent only when the broker's PUBACK for that message id arrives. After any
reconnect it goes back and publishes again every row not yet confirmed (duplicates are harmless: the
receiver de-duplicates by event id).

PUBACK alone is not end-to-end: a broker killed before it saved its state forgets messages it has
acknowledged. With receipts on (default), the control-room receiver confirms the highest sequence number
it has stored contiguously on `.../receipts`; rows not confirmed within `receipt_timeout_s` of the last
progress, or after a gap the receiver reports, are published again from the first unconfirmed one
(the wait doubles, up to 10 min, while no receipt comes at all: the control room may be down for hours).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.errors import SyncError
from appliance.events.models import utc_now_iso
from appliance.events.receipts import ReceiptRefused, check_receipt
from appliance.events.status import StatusReporter, offline_payload
from appliance.events.store import EventStore
from appliance.events.types import Link, OutboxMessage
from appliance.keys.keypairs import load_verify_key
from appliance.message_kinds import OUTBOX_KINDS
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings
from appliance.sync.payloads import PayloadError, parse_json

log = logging.getLogger(__name__)

# MQTT v5 user properties on every outbox publish (the sequencing contract with the receiver).
PROP_STREAM = "lfr-stream"    # the events database's random stream id
PROP_SEQ = "lfr-seq"          # the outbox row id: increasing, no gaps, per stream
PROP_BASE = "lfr-base"        # every row <= base is already confirmed by a receipt
PROP_RECEIPTS = "lfr-receipts"  # "1": the device waits for receipts and re-sends; the receiver keeps order
MAX_RECEIPT_BYTES = 4096  # a signed receipt is ~330 bytes
GAP_REPEAT_S = 3.0  # gap receipts for the same position within this long are one gap (messages in flight)
MAX_RECEIPT_BACKOFF_S = 600.0  # with no receiver at all, re-send the unconfirmed backlog at most this rarely
_OUTBOX_KIND_NAMES = frozenset(k.name for k in OUTBOX_KINDS)  # the store's events that wake the publisher


def receipts_topic(device: str) -> str:
    return topics.receipts(device)


def _will(device: str) -> tuple[str, str, int, bool]:
    return topics.status(device), json.dumps(offline_payload(device, "connection lost (last will)")), 1, True


def van_connection(config) -> MqttConnection:
    """The van's one MQTT connection (client id = device id = its certificate's CN), shared by the outbox
    publisher, the watchlist sync and the command listener. The broker replaces any client id with the
    certificate's CN (use_username_as_clientid), so one van has one session and no other certificate can take
    it over; a second connection of the same van would only displace the first. Messages are acknowledged
    after their handler returns (a bundle chunk only once it is on disk). Its last will is the retained
    'offline' status."""
    settings = MqttSettings.from_config(config.mqtt, client_id=config.device.id)
    return MqttConnection(settings, ack_after_handling=True, will=_will(config.device.id))


class OutboxPublisher:
    def __init__(
        self,
        store: EventStore,
        settings: MqttSettings,
        device_id: str,
        *,
        status: StatusReporter | None = None,
        receipts: bool = True,
        receipt_timeout_s: float = 30.0,
        status_interval_s: float = 30.0,
        max_inflight: int = 20,
        retry_max_s: float = 30.0,
        verify_key: Ed25519PublicKey | None = None,
        conn: MqttConnection | None = None,
        audit_head: Callable[[], Mapping[str, Any] | None] | None = None,
    ):
        """verify_key: the control room's pinned Ed25519 key. With it, only signed receipts (lfr.receipt/2) are
        believed; without it (a stand-in van, a third-party control room), unsigned ones are too. Either way a
        receipt never confirms beyond what this van has published."""
        self.store = store
        self.device_id = device_id
        self.settings = settings
        self.status = status
        self.receipts = receipts
        self.receipt_timeout_s = receipt_timeout_s
        self.status_interval_s = status_interval_s
        self.max_inflight = max_inflight
        self.retry_max_s = retry_max_s
        self.stream_id = store.stream_id()
        self.verify_key = verify_key
        self.audit_head = audit_head  # the audit chain head, published (retained) with every status
        self.receipts_refused = 0  # receipts not believed (forged, another van's, beyond what was published)
        self._published_upto = store.published_upto()
        self.conn: MqttConnection | None = None
        self.published = 0  # publishes (including re-sends), for tests and the log
        self.go_backs = 0
        self.failures = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._acks: collections.deque[int] = collections.deque()
        self._receipts: collections.deque[dict] = collections.deque()
        self._link_events: collections.deque[tuple[bool, bool]] = collections.deque()
        self._link: Link = {"state": "down", "since": None, "reconnects": 0}
        self._link_lock = threading.Lock()
        self._ever_up = False
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self._unsubscribe = store.subscribe(self._on_store_event)
        # conn: the van's shared connection (van_connection; the daemon connects and closes it).
        self._shared = conn
        if conn is not None:
            if receipts:
                conn.attach(receipts_topic(device_id), self._on_message)
            conn.add_publish_listener(self._on_publish)
            conn.add_link_listener(self._on_link)
            if conn.connected:
                self._on_link(True, conn.session_present)

    @classmethod
    def from_config(cls, config, store: EventStore, status: StatusReporter | None = None,
                    conn: MqttConnection | None = None,
                    audit_head: Callable[[], Mapping[str, Any] | None] | None = None) -> OutboxPublisher:
        """The daemon's publisher: [mqtt] for the broker, [events] for receipts and intervals. With `conn` (the
        daemon's van_connection) it shares the van's one connection; otherwise it owns one, client id the
        device id."""
        device = config.device.id
        settings = MqttSettings.from_config(config.mqtt, client_id=device)
        e = config.events
        from appliance.keys.paths import control_room_key_path

        key_path = control_room_key_path(config)
        verify_key = load_verify_key(key_path) if key_path.exists() else None
        if verify_key is None and e.receipts:
            log.warning("events: no pinned control-room key at %s: receipts are believed unsigned", key_path)
        return cls(store, settings, device, status=status, receipts=e.receipts, receipt_timeout_s=e.receipt_timeout_s,
                   status_interval_s=e.status_interval_s, max_inflight=e.max_inflight, verify_key=verify_key,
                   conn=conn, audit_head=audit_head)

    # -- public -------------------------------------------------------------------------------------------
    def start(self) -> OutboxPublisher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained 'offline' status, disconnect cleanly (no last will), stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._unsubscribe()

    @property
    def link(self) -> Link:
        with self._link_lock:
            return Link(**self._link)

    def wait_link(self, up: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.link["state"] == "up") == up:
                return True
            time.sleep(0.05)
        return False

    # -- callbacks (other threads): only queue and wake -------------------------------------------------
    def _on_store_event(self, kind: str, data: dict) -> None:
        if kind in _OUTBOX_KIND_NAMES:
            self._wake.set()

    def _on_publish(self, mid: int, reason_code) -> None:
        if reason_code is None or not getattr(reason_code, "is_failure", False):
            self._acks.append(mid)
        else:
            log.warning("broker refused an event publish: %s", reason_code)
        self._wake.set()

    def _on_link(self, up: bool, session_present: bool) -> None:
        self._link_events.append((up, session_present))
        with self._link_lock:
            was = self._link["state"]
            self._link["state"] = "up" if up else "down"
            if was != self._link["state"]:
                self._link["since"] = utc_now_iso()
                if up and self._ever_up:
                    self._link["reconnects"] += 1
                self._ever_up = self._ever_up or up
        self._wake.set()

    def _on_message(self, message) -> None:
        # paho's thread: parse (bounded) and queue; the publisher thread checks it against what it published.
        try:
            r = parse_json(message.payload, max_bytes=MAX_RECEIPT_BYTES, max_depth=2, what="receipt")
        except PayloadError as e:
            self._refuse_receipt(str(e))
            return
        self._receipts.append(r)
        self._wake.set()

    def _refuse_receipt(self, why: str) -> None:
        self.receipts_refused += 1
        if self.receipts_refused <= 20 or self.receipts_refused % 1000 == 0:  # a flood must not flood the log
            log.warning("events: receipt ignored (%d so far): %s", self.receipts_refused, why)

    # -- the thread ---------------------------------------------------------------------------------------
    def _connect(self) -> MqttConnection:
        if self._shared is not None:
            return self._shared
        will = _will(self.device_id)
        subs = [(receipts_topic(self.device_id), 1)] if self.receipts else []
        conn = MqttConnection(self.settings, on_message=self._on_message, subscriptions=subs,
                              on_publish=self._on_publish, on_link=self._on_link, will=will)
        return conn.connect()

    def _run(self) -> None:
        backoff, last_error = 0.5, None
        while not self._stop.is_set():
            try:
                self.conn = self._connect()
                break
            except SyncError as e:
                if str(e) != last_error:  # one line per new reason, not one per attempt
                    log.warning("events: %s; retrying (events stay in the outbox)", e)
                    last_error = str(e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
        if self.conn is None:
            return
        try:
            while not self._stop.is_set():
                try:
                    self._loop()
                except Exception:  # e.g. the disk is full: keep the events, say so once, try again
                    self.failures += 1
                    if self.failures == 1:
                        log.exception("events: the outbox publisher failed; retrying every 5 s")
                    self._stop.wait(5.0)
        finally:
            self._shutdown()

    def _loop(self) -> None:
        inflight: dict[int, int] = {}     # mid -> outbox id, publishes of this connection
        cursor = 0                        # highest outbox id published since the last go-back
        received = self.store.received_upto()
        last_progress = time.monotonic()
        rto = self.receipt_timeout_s      # doubles while no receiver answers (it may be down for hours)
        gap_handled: tuple[int, float] | None = None  # (upto, when): one go-back per gap, not one per receipt
        next_status = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            now = time.monotonic()
            # Link changes: on every (re)connect, forget this connection's in-flight map and go back.
            while self._link_events:
                up, session_present = self._link_events.popleft()
                if up:
                    log.info("events: broker link up (session present: %s); %d events to send", session_present,
                             self.store.outbox_backlog())
                    inflight.clear()
                    cursor = 0
                    last_progress = now
                    next_status = 0.0
                else:
                    log.info("events: broker link down; events stay in the outbox")
            # PUBACKs -> sent.
            acked = []
            while self._acks:
                rid = inflight.pop(self._acks.popleft(), None)
                if rid is not None:
                    acked.append(rid)
            if acked:
                self.store.mark_sent(acked)
            # Receipts -> received; a gap the receiver reports -> go back once per gap.
            while self._receipts:
                try:
                    checked = check_receipt(self._receipts.popleft(), self.verify_key, device_id=self.device_id,
                                            stream_id=self.stream_id, published_upto=self._published_upto)
                except ReceiptRefused as e:
                    self._refuse_receipt(str(e))
                    continue
                if checked is None:  # another stream of this van (an events database from before a re-provision)
                    continue
                upto, is_gap = checked
                if upto > received:
                    self.store.mark_received(upto)
                    received = upto
                    last_progress = now
                    rto = self.receipt_timeout_s
                if is_gap and cursor > upto and (gap_handled is None or gap_handled[0] != upto
                                                        or now - gap_handled[1] > GAP_REPEAT_S):
                    gap_handled = (upto, now)
                    cursor = self._go_back(f"the receiver reported a gap after {upto}")
                    last_progress = now
            if self.receipts and cursor > received and now - last_progress > rto:
                cursor = self._go_back(f"no receipt progress for {rto:.0f} s")
                last_progress = now
                rto = min(rto * 2, max(MAX_RECEIPT_BACKOFF_S, self.receipt_timeout_s))
            connected = self.conn.connected
            if connected and len(inflight) < self.max_inflight:
                fetch = self.store.outbox_unreceived if self.receipts else self.store.outbox_unsent
                was_idle = cursor <= received  # nothing outstanding: the receipt clock starts now
                for row in fetch(after_id=cursor, limit=self.max_inflight - len(inflight)):
                    mid = self._publish_row(row, received)
                    if mid is None:
                        break
                    inflight[mid] = row["id"]
                    cursor = row["id"]
                    if was_idle:
                        last_progress, was_idle = now, False
            if connected and self.status is not None and (now >= next_status or self.status.changed.is_set()):
                self.status.changed.clear()
                self._publish_status()
                next_status = now + self.status_interval_s
            more = connected and len(inflight) < self.max_inflight and self._has_more(cursor)
            if not more:
                self._wake.wait(0.5)

    def _has_more(self, cursor: int) -> bool:
        fetch = self.store.outbox_unreceived if self.receipts else self.store.outbox_unsent
        return bool(fetch(after_id=cursor, limit=1))

    def _go_back(self, why: str) -> int:
        self.go_backs += 1
        log.info("events: publishing unconfirmed events again (%s)", why)
        return 0

    def _publish_row(self, row: OutboxMessage, received: int) -> int | None:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [(PROP_STREAM, self.stream_id), (PROP_SEQ, str(row["id"])), (PROP_BASE, str(received)),
                              (PROP_RECEIPTS, "1" if self.receipts else "0")]
        props.ContentType = "application/json"
        payload = json.dumps(row["payload"], separators=(",", ":"))
        try:
            d = self.conn.publish(topics.topic(self.device_id, row["topic"]), payload, qos=1, properties=props)
        except SyncError as e:
            log.warning("events: %s", e)
            return None
        self.published += 1
        self._published_upto = max(self._published_upto, row["id"])
        return d.info.mid

    def _publish_status(self) -> None:
        try:
            self.conn.publish(topics.status(self.device_id), json.dumps(self.status.payload(self.link)),
                              qos=1, retain=True)
        except SyncError as e:
            log.warning("events: status not published: %s", e)
        self._publish_audit_head()

    def _publish_audit_head(self) -> None:
        """The chain head beside the status: the control room keeps the highest it has seen, so a log cut at
        its end (which the chain alone cannot show) is noticed when the van's export falls short of it."""
        if self.audit_head is None:
            return
        try:
            head = self.audit_head()
            if head is not None:
                self.conn.publish(topics.audit_head(self.device_id), json.dumps(head), qos=1, retain=True)
        except Exception as e:  # the store failed: the status went out; the head goes with the next one
            log.warning("events: audit head not published: %s", e)

    def _shutdown(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            if conn.connected:
                payload = offline_payload(self.device_id, "stopped")
                if self.status is not None:
                    payload = {**self.status.payload(self.link, state="offline"), "detail": "stopped"}
                try:
                    conn.publish(topics.status(self.device_id), json.dumps(payload), qos=1, retain=True).wait(3)
                except SyncError as e:
                    log.warning("events: offline status not confirmed: %s", e)
        finally:
            if self._shared is None:
                conn.close()
