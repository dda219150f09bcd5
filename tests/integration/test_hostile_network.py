"""Issue 12: a hostile network. Real TLS Mosquitto with the deployed config and ACL, real SQLCipher stores, real
Ed25519 signatures. Each test here failed on the code before issue 12 (see the report of that change):

- poison messages on a van's commands topic no longer stop a signed revoke from getting through;
- forged or out-of-bounds receipts no longer make the van (and so the control room) drop events;
- a signed bundle with an impossible date is refused with an ack and leaves the spool;
- a reused transfer id with another bundle is refused, not acked "applied";
- the spool drops a transfer whose chunks hold more than its declared size.
"""

from __future__ import annotations

import json
import queue
import time
from datetime import timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from test_commands_mqtt import CONTROL, Van

from appliance.commands.signing import build_command, sign_command
from appliance.control.receiver import ControlReceiver
from appliance.control.store import ControlStore, open_control_db
from appliance.events import Alert
from appliance.events.publisher import OutboxPublisher
from appliance.events.receipts import sign_receipt, unsigned_receipt
from appliance.events.store import EventStore
from appliance.storage import KeyFileProvider
from appliance.sync import topics
from appliance.sync.chunks import Chunk, split
from appliance.sync.mqtt import MqttConnection
from appliance.sync.watchlist_sync import WatchlistSyncService, publish_bundle, send_bundle
from appliance.watchlist import builder as builder_mod
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.receiver import WatchlistReceiver
from appliance.watchlist.records import Entry
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.timeutil import iso, utcnow


# -- 1. poison messages on the commands topic ----------------------------------------------------------------
@pytest.fixture
def van(tmp_path, tls_broker):
    v = Van(tmp_path, tls_broker)
    yield v
    v.close()


def test_poison_commands_do_not_block_a_signed_revoke(van, tls_broker):
    """40 deeply nested payloads (more than the broker's in-flight window of 20), garbage and a huge number,
    then a signed revoke: it is carried out and acked within seconds, and each poison message got a refusal."""
    acks: queue.Queue = queue.Queue()
    cr = MqttConnection(tls_broker.settings("control-room", "cr-poison"), clean_start=True,
                        on_message=lambda m: acks.put(json.loads(m.payload)))
    cr.connect()
    try:
        cr.subscribe(topics.commands_ack("van-01"), 1)
        poison = [b"[" * 200_000, b"{\"a\":" * 50_000, b"\xff\xfe", b"1e999999", b'{"schema": "\\ud800"}'] * 8
        for p in poison:
            cr.publish(topics.commands("van-01"), p, qos=1).wait(10)
        refused = [acks.get(timeout=20) for _ in poison]
        assert all(a["status"] == "refused" and a["reason"] == "malformed" for a in refused), refused[:3]
        env = sign_command(CONTROL, build_command("revoke_watchlist", "van-01", {"reason": "authority withdrawn"}))
        t0 = time.monotonic()
        cr.publish(topics.commands("van-01"), json.dumps(env), qos=1).wait(10)
        ack = acks.get(timeout=10)
        assert ack["status"] == "done" and ack["type"] == "revoke_watchlist", ack
        assert time.monotonic() - t0 < 2.0
        assert van.watchlist.meta() is None
    finally:
        cr.close()


# -- 2. receipts ---------------------------------------------------------------------------------------------
def _alert(i: int) -> Alert:
    return Alert(device_id="van-02", subject_id=f"S-{i}", category="wanted", score=0.7, threshold=0.5, track_id=i,
                 model_id="m", watchlist_id="wl", watchlist_version=1, crop_jpeg=b"\xff\xd8\xff" + bytes(40))


def test_forged_receipts_cannot_make_the_control_room_drop_events(tmp_path, tls_broker):
    """Receipts with a huge `upto`, unsigned (lfr.receipt/1), signed by another key, or signed by the real key
    but beyond what the van has published, reach the van on its receipts topic (sent with the control-room
    certificate, which the ACL allows). None of them is believed: every later event reaches the receiver's
    store, exactly once, and the van's confirmed position never passes what it published."""
    signing = Ed25519PrivateKey.generate()
    store = EventStore.open(tmp_path / "van", KeyFileProvider(tmp_path / "van" / "keys"))
    control = ControlStore(open_control_db(tmp_path / "control.db"))
    lines: list[str] = []
    rx = ControlReceiver(tls_broker.settings("control-room", "cr-rx-forged"), control, out=lines.append,
                         signing_key=signing).start()
    pub = OutboxPublisher(store, tls_broker.settings("van-02", "van-02-events"), "van-02",
                          verify_key=signing.public_key(), receipt_timeout_s=30).start()
    attacker = MqttConnection(tls_broker.settings("control-room", "cr-attacker"), clean_start=True).connect()
    try:
        assert pub.wait_link(True, 15)
        store.add_alert(_alert(0))
        _wait(lambda: len(control.arrivals("van-02")) == 1, 15, "the first alert at the receiver")
        stream = store.stream_id()
        forged = [unsigned_receipt(device_id="van-02", stream_id=stream, upto=10**9, gap=False),
                  sign_receipt(Ed25519PrivateKey.generate(), device_id="van-02", stream_id=stream, upto=10**9,
                               gap=False),
                  sign_receipt(signing, device_id="van-02", stream_id=stream, upto=10**9, gap=False)]
        for body in forged:
            attacker.publish(topics.receipts("van-02"), json.dumps(body), qos=1).wait(10)
        _wait(lambda: pub.receipts_refused >= 3, 10, "the van to refuse the forged receipts")
        for i in range(1, 11):
            store.add_alert(_alert(i))
        _wait(lambda: len(control.arrivals("van-02")) == 11, 20, "all 11 alerts at the receiver")
        _wait(lambda: store.received_upto() == 11, 10, "receipts for all 11")
        assert store.received_upto() <= store.published_upto()
        assert [a["seq"] for a in control.arrivals("van-02")] == list(range(1, 12))
    finally:
        attacker.close()
        pub.stop()
        rx.stop()
        control.close()
        store.close()


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- 4. bundles ----------------------------------------------------------------------------------------------
DEVICE_X = X25519PrivateKey.generate()


def _entries(n: int = 3) -> list[Entry]:
    out = []
    for i in range(n):
        t = np.random.default_rng(i).standard_normal(128).astype(np.float32)
        out.append(Entry({"id": f"S-{i}", "display_name": f"Person {i}", "category": "wanted", "legal_basis": "b",
                          "image_source": "c", "expires_at": iso(utcnow() + timedelta(days=30))},
                         (t / np.linalg.norm(t))[None, :], b"\xff\xd8\xff" + bytes([i]) * 50))
    return out


@pytest.fixture
def sync(tmp_path, tls_broker):
    store = WatchlistStore.open(tmp_path / "van", KeyFileProvider(tmp_path / "van" / "keys"))
    receiver = WatchlistReceiver(store=store, device_id="van-01", verify_key=CONTROL.public_key(),
                                 device_key=DEVICE_X, model_id="m")
    service = WatchlistSyncService(tls_broker.settings("van-01", "van-01-watchlist-h"), receiver,
                                   tmp_path / "van" / "spool").start()
    time.sleep(0.5)  # the subscription is sent on CONNACK, without waiting for the SUBACK: let it land
    yield service
    service.stop()
    store.close()


def _build(tmp_path, name: str, version: int, **kw):
    return build_bundle(_entries(), tmp_path / f"{name}.lfrwl", watchlist_id="wl-h", model_id="m",
                        signing_key=CONTROL, recipients=[("van-01", DEVICE_X.public_key())], version=version,
                        **kw).path


def _publish(broker, path, tid: str | None = None):
    return publish_bundle(broker.settings("control-room", "cr-publisher-h"), path, ["van-01"], chunk_bytes=4096,
                          wait_ack_s=20, transfer_id=tid)


def test_signed_bundle_with_an_impossible_date_is_refused_cleanly(tmp_path, tls_broker, sync, monkeypatch):
    """Month 99 in a signed header: refused 'malformed' with an ack, the spool is empty, the next bundle works."""
    real_write = builder_mod.write_bundle

    def write_month_99(out, fields, *a, **kw):
        import appliance.watchlist.bundle as bundle_mod

        monkeypatch.setattr(bundle_mod, "first_error", lambda *_: None)  # the control room's own check, skipped
        try:
            return real_write(out, {**fields, "expires_at": "2027-99-01T00:00:00Z"}, *a, **kw)
        finally:
            monkeypatch.undo()

    monkeypatch.setattr(builder_mod, "write_bundle", write_month_99)
    bad = _build(tmp_path, "month99", 1)
    monkeypatch.undo()
    res = _publish(tls_broker, bad)
    ack = res.acks.get("van-01")
    assert ack is not None, "no ack for the month-99 bundle"
    assert ack["status"] == "refused" and ack["reason"] == "malformed", ack
    assert "expires_at" in ack["detail"]
    assert sync.wait_processed(1, 10)
    assert sync.spool.transfers() == []
    good = _publish(tls_broker, _build(tmp_path, "good", 2))
    assert good.acks["van-01"]["status"] == "applied"


def test_a_reused_transfer_id_with_another_bundle_is_refused(tmp_path, tls_broker, sync):
    tid = "ab" * 16
    first = _publish(tls_broker, _build(tmp_path, "one", 1), tid)
    assert first.acks["van-01"]["status"] == "applied"
    sync.wait_processed(1, 10)
    second = _publish(tls_broker, _build(tmp_path, "two", 2), tid)
    ack = second.acks["van-01"]
    assert ack["status"] == "refused" and ack["reason"] == "replay", ack
    assert sync.receiver.store.meta()["version"] == 1
    # The same bundle under the same id again (its ack was lost): acked applied, not re-applied.
    again = _publish(tls_broker, tmp_path / "one.lfrwl", tid)
    assert again.acks["van-01"]["status"] == "applied"


def over_declared_chunks(path, tid: bytes) -> list[Chunk]:
    """Declare a third of the real size and keep two thirds of the chunks: never complete, and more bytes than
    declared (before issue 12 they sat in the spool until the 48-hour stale sweep)."""
    _, chunks = split(path, 512, tid)
    lying = [Chunk(c.transfer_id, c.index, c.count, c.total // 3, c.sha256, c.data) for c in chunks]
    return lying[: 2 * len(lying) // 3]


def test_the_spool_drops_a_transfer_that_exceeds_its_declared_size(tmp_path, tls_broker, sync):
    """Chunks whose data add up to more than the declared total: the transfer is dropped, not kept 48 hours."""
    path = _build(tmp_path, "big", 1)
    tid = bytes.fromhex("cd" * 16)
    lying = over_declared_chunks(path, tid)
    conn = MqttConnection(tls_broker.settings("control-room", "cr-spool-h"), clean_start=True).connect()
    try:
        conn.publish(topics.watchlist_bundles("van-01"), lying[0].encode(), qos=1).wait(10)
        _wait(lambda: sync.spool.transfers() == [tid], 10, "the first chunk in the spool")
        for c in lying[1:]:
            conn.publish(topics.watchlist_bundles("van-01"), c.encode(), qos=1).wait(10)
        time.sleep(1.0)  # every chunk is handled (acked) by now; the last ones were refused
        assert sync.spool.transfers() == [], "the oversized transfer is still spooled"
        # The real bundle still goes through afterwards.
        send_bundle(conn, "van-01", path, bytes.fromhex("ef" * 16), chunk_bytes=4096)
        assert sync.wait_processed(1, 20) and sync.last_ack["status"] == "applied"
    finally:
        conn.close()


# -- 5. the control room's store -------------------------------------------------------------------------------
def test_control_listen_stores_encrypted_0600_and_purges_old_crops(tmp_path, tls_broker):
    """`appliance control listen` encrypts its database by default (SQLCipher, key in <db>.keys/), every file it
    writes is 0600, and crops older than --crop-days are purged while the alert stays."""
    import os
    import sqlite3
    import stat
    from datetime import datetime, timezone

    from outbox_helpers import receiver

    from appliance.control.store import default_keys_dir
    from appliance.events.burst import synthetic_crop

    db = tmp_path / "control.db"
    rx = receiver(tls_broker, db)
    van = MqttConnection(tls_broker.settings("van-01", "van-01"), clean_start=True).connect()
    try:
        alert = Alert(device_id="van-01", subject_id="S-1", category="wanted", score=0.7, threshold=0.5, track_id=1,
                      model_id="m", watchlist_id="wl", watchlist_version=1, crop_jpeg=synthetic_crop(1))
        van.publish(topics.alerts("van-01"), json.dumps(alert.to_payload()), qos=1).wait(10)
        rx.wait_line(rf" alert {alert.event_id} ", 15)
    finally:
        van.close()
        assert rx.terminate() == 0
    with pytest.raises(sqlite3.DatabaseError):  # not readable as plain SQLite: encrypted at rest
        sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchone()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and (p.name.startswith("control.db") or
                                                                     p.parent == default_keys_dir(db))]
    assert written and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in written), \
        {p.name: oct(stat.S_IMODE(os.stat(p).st_mode)) for p in written}
    store = ControlStore(open_control_db(db, KeyFileProvider(default_keys_dir(db))))
    try:
        assert store.db.conn.execute("SELECT crop_jpeg IS NOT NULL FROM alerts").fetchone()[0] == 1
        later = datetime.now(timezone.utc) + timedelta(days=32)
        assert ControlReceiver(None, store, out=lambda _: None).purge_crops(later) == 1
        assert store.db.conn.execute("SELECT crop_jpeg IS NULL, subject_id FROM alerts").fetchone() == (1, "S-1")
    finally:
        store.close()


def test_a_plain_control_store_is_0600_too(tmp_path):
    import os
    import stat

    store = ControlStore(open_control_db(tmp_path / "plain.db"))
    try:
        store.set_status("van-01", {"time": "2026-01-01T00:00:00Z", "state": "running"}, "2026-01-01T00:00:00Z")
        store.db.conn.commit()
    finally:
        store.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("plain.db")]
    assert files and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in files)
