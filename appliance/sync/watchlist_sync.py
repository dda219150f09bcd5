"""Watchlist bundles over MQTT: the control room's publisher and the device's receiving service.

Publisher: subscribes to each device's ack topic, sends the bundle in QoS 1 chunks (a bounded window in
flight), then waits for the acks. The same transfer id can be re-sent (all chunks, or the missing ones)
to resume a cut transfer; the device ignores chunks it already has.

Device (WatchlistSyncService, run by the daemon or `appliance watchlist receive`): a persistent session
subscribed to its bundles topic; chunks go to the on-disk spool before they are acknowledged; a complete
transfer is assembled, handed to the WatchlistReceiver (verify, apply, swap), and acked. A transfer left
complete by a crash is processed at the next start; one already applied is acked again, not re-applied.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import SyncError
from appliance.sync import topics
from appliance.sync.chunks import Chunk, ChunkError, Spool, split
from appliance.sync.mqtt import Delivery, MqttConnection, MqttSettings, RetryLater
from appliance.sync.payloads import PayloadError, parse_json
from appliance.watchlist.bundle import file_sha256
from appliance.watchlist.receiver import ACK_SCHEMA, WatchlistReceiver
from appliance.watchlist.types import WatchlistAck

log = logging.getLogger(__name__)


# -- control room -------------------------------------------------------------------------------------
@dataclass
class PublishResult:
    transfer_id: str
    chunks: int
    bytes: int
    acks: dict[str, WatchlistAck] = field(default_factory=dict)  # device -> ack payload
    seconds_send: float = 0.0
    seconds_ack: float = 0.0
    ack_received_at: dict[str, float] = field(default_factory=dict)  # device -> wall time (time.time())


class AckCollector:
    """Collects acks from devices' ack topics, by transfer id."""

    def __init__(self):
        self._acks: dict[tuple[str, str], WatchlistAck] = {}
        self.received_at: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()

    def on_message(self, msg) -> None:
        try:
            ack = parse_json(msg.payload, max_bytes=64 * 1024, what="ack")
        except PayloadError as e:
            log.warning("ignoring an ack on %s: %s", msg.topic, e)
            return
        if not isinstance(ack, dict) or ack.get("schema") != ACK_SCHEMA:
            return
        key = (str(ack.get("device")), str(ack.get("transfer_id")))
        with self._cond:
            self._acks[key] = ack
            self.received_at[key] = time.time()
            self._cond.notify_all()

    def wait(self, devices: list[str], transfer_id: str, timeout: float) -> dict[str, WatchlistAck]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = {d: self._acks[(d, transfer_id)] for d in devices if (d, transfer_id) in self._acks}
                left = deadline - time.monotonic()
                if len(got) == len(devices) or left <= 0:
                    return got
                self._cond.wait(left)


def send_bundle(
    conn: MqttConnection,
    device: str,
    path: Path,
    transfer_id: bytes,
    *,
    chunk_bytes: int = 256 * 1024,
    window: int = 16,
    only: set[int] | None = None,
    timeout: float = 60.0,
) -> tuple[int, int]:
    """Publish the bundle's chunks to one device with QoS 1; returns (chunks in bundle, chunks sent).

    At most `window` chunks are unacknowledged at once, so memory stays bounded for a large bundle.
    `only` restricts the indices sent (resuming, and tests of a cut transfer).
    """
    count, chunks = split(path, chunk_bytes, transfer_id)
    topic = topics.watchlist_bundles(device)
    inflight: deque[Delivery] = deque()
    sent = 0
    for chunk in chunks:
        if only is not None and chunk.index not in only:
            continue
        inflight.append(conn.publish(topic, chunk.encode(), qos=1))
        sent += 1
        while len(inflight) >= window:
            inflight.popleft().wait(timeout)
    while inflight:
        inflight.popleft().wait(timeout)
    return count, sent


def publish_bundle(
    settings: MqttSettings,
    path: Path,
    devices: list[str],
    *,
    chunk_bytes: int = 256 * 1024,
    transfer_id: str | None = None,
    wait_ack_s: float = 120.0,
    only: set[int] | None = None,
) -> PublishResult:
    """Send one bundle to several devices and collect their acks (wait_ack_s = 0: do not wait)."""
    tid = bytes.fromhex(transfer_id) if transfer_id else os.urandom(16)
    if len(tid) != 16:
        raise SyncError("a transfer id is 32 hex digits")
    acks = AckCollector()
    conn = MqttConnection(settings, on_message=acks.on_message)
    conn.connect()
    try:
        if wait_ack_s > 0:
            for d in devices:
                conn.subscribe(topics.watchlist_ack(d), qos=1)
        t0 = time.monotonic()
        total = 0
        for d in devices:
            count, _ = send_bundle(conn, d, path, tid, chunk_bytes=chunk_bytes, only=only)
            total = count
        t1 = time.monotonic()
        got = acks.wait(devices, tid.hex(), wait_ack_s) if wait_ack_s > 0 else {}
        t2 = time.monotonic()
    finally:
        conn.close()
    times = {d: acks.received_at[(d, tid.hex())] for d in got}
    return PublishResult(tid.hex(), total, Path(path).stat().st_size, got, t1 - t0, t2 - t1, times)


# -- device -------------------------------------------------------------------------------------------
class WatchlistSyncService:
    """Receives bundle chunks for one device, applies complete bundles, and acks each one."""

    def __init__(
        self,
        settings: MqttSettings,
        receiver: WatchlistReceiver,
        spool_dir: Path,
        *,
        max_bundle_bytes: int = 1024 << 20,
        stale_after_s: float = 48 * 3600,
        conn: MqttConnection | None = None,
    ):
        """conn: the van's one shared connection (the daemon connects and closes it); without it the service
        owns a connection made from `settings`."""
        self.device_id = receiver.device_id
        self.receiver = receiver
        self.spool = Spool(spool_dir)
        self.max_bundle_bytes = max_bundle_bytes
        self.stale_after_s = stale_after_s
        self._shared = conn is not None
        if conn is not None:  # shared connections acknowledge after handling too
            conn.attach(topics.watchlist_bundles(self.device_id), self._on_message)
            self.conn = conn
        else:
            self.conn = MqttConnection(
                settings, on_message=self._on_message, subscriptions=[(topics.watchlist_bundles(self.device_id), 1)],
                ack_after_handling=True,  # a chunk is acknowledged only once it is on disk
            )
        self._work: queue.Queue[bytes | None] = queue.Queue()
        self._refused_size: set[bytes] = set()
        self._queued: set[bytes] = set()
        self._qlock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="watchlist-sync", daemon=True)
        self.processed = 0  # transfers finished (applied or refused), for callers and tests
        self.last_ack: WatchlistAck | None = None
        self._done = threading.Condition()

    def start(self) -> WatchlistSyncService:
        for tid in self.spool.drop_stale(self.stale_after_s):
            log.info("dropped stale incomplete transfer %s", tid)
        self._worker.start()
        for tid in self.spool.transfers():  # finished before a crash or restart: apply now
            if self.spool.is_complete(tid):
                self._enqueue(tid)
        if not self._shared:
            self.conn.connect()
        return self

    def stop(self) -> None:
        self._work.put(None)
        self._worker.join(timeout=60)
        if not self._shared:
            self.conn.close()

    def wait_processed(self, n: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.processed >= n, timeout)

    def _enqueue(self, tid: bytes) -> None:
        with self._qlock:
            if tid in self._queued:
                return
            self._queued.add(tid)
        self._work.put(tid)

    def _on_message(self, msg) -> None:
        # Runs in paho's thread; the PUBACK goes out when this returns, so persist first.
        try:
            chunk = Chunk.decode(msg.payload)
        except ChunkError as e:
            log.warning("ignoring a message on %s: %s", msg.topic, e)
            return
        tid = chunk.transfer_id
        if chunk.total > self.max_bundle_bytes:
            if tid not in self._refused_size:
                self._refused_size.add(tid)
                detail = f"{chunk.total} bytes, the limit is {self.max_bundle_bytes}"
                ack = self._transport_ack(tid, "too_large", detail)
                self._publish_ack(ack, wait=False)  # in paho's thread: waiting for the PUBACK would deadlock
            return
        with self._qlock:
            if tid in self._queued:
                return  # a duplicate of a transfer already complete and being processed
        try:
            complete = self.spool.add(chunk)
        except ChunkError as e:
            log.warning("%s", e)
            return
        except OSError as e:  # disk full: no PUBACK, the broker delivers the chunk again after a reconnect
            raise RetryLater(f"chunk not stored: {e}") from None
        if complete:
            self._enqueue(tid)

    def _run(self) -> None:
        while True:
            tid = self._work.get()
            if tid is None:
                return
            try:
                self._process(tid)
            except Exception:  # the ack could not be stored or sent (disk, broker): kept spooled for the next start
                log.exception("processing transfer %s failed", tid.hex())
            finally:
                with self._qlock:
                    self._queued.discard(tid)
                with self._done:
                    self.processed += 1
                    self._done.notify_all()

    def _process(self, tid: bytes) -> None:
        try:
            ack = self._outcome(tid)
        except Exception as e:  # nothing escapes: refuse with the reason, and never try this transfer again
            log.exception("transfer %s could not be processed", tid.hex())
            ack = self._transport_ack(tid, "malformed", f"could not be processed: {type(e).__name__}: {str(e)[:200]}")
        self._publish_ack(ack)
        self.spool.remove(tid)

    def _outcome(self, tid: bytes) -> WatchlistAck:
        path, intact = self.spool.assemble(tid)
        if not intact:
            return self._transport_ack(tid, "transfer_corrupt", "the reassembled bundle does not match its checksum")
        previous = self.receiver.store.applied_event(tid.hex())
        if previous is None:
            return self.receiver.process(path, transfer_id=tid.hex())
        digest = file_sha256(path)
        if previous["bundle_sha256"] != digest:  # a transfer id names one bundle, for good
            return self._transport_ack(tid, "replay", f"transfer id {tid.hex()} was used before for another bundle "
                                       f"(sha256 {str(previous['bundle_sha256'])[:16]}…); not applied")
        # Applied before a crash, ack lost: say so again, do not re-apply.
        return self.receiver.applied_ack(tid.hex(), previous["bundle_sha256"])

    def _transport_ack(self, tid: bytes, reason: str, detail: str) -> WatchlistAck:
        return self.receiver.refuse_transfer(tid.hex(), reason, detail)

    def _publish_ack(self, ack: WatchlistAck, wait: bool = True) -> None:
        self.last_ack = ack
        delivery = self.conn.publish(topics.watchlist_ack(self.device_id), json.dumps(ack), qos=1)
        if not wait:
            return
        try:
            delivery.wait(timeout=30)
        except SyncError as e:  # paho keeps it queued and retries after reconnecting
            log.warning("watchlist ack not yet delivered: %s", e)
