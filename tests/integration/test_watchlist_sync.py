"""Watchlist sync end to end over a real TLS Mosquitto (client certificates, the deployed ACL):
a good bundle is applied, acked and matched; every bad bundle is refused with the reason in the ack while
the previous watchlist keeps working; a cut transfer resumes; devices stay inside their own topics."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import numpy as np
import pytest

from appliance.config import load_config
from appliance.daemon.assembly import gallery_swapper, make_receiver, make_sync_service, open_store
from appliance.errors import SyncError
from appliance.keys.keypairs import load_device_public, load_signing_key
from appliance.matching import MatchService
from appliance.sync import topics
from appliance.sync.chunks import split
from appliance.sync.mqtt import MqttConnection
from appliance.sync.watchlist_sync import publish_bundle
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.records import Entry
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import utcnow

WL = "wl-test"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tls_broker, watchlist_keys, lfw_watchlist, pipeline):
    """van-01 running the sync service in this process, with a real store and a real MatchService."""
    data = tmp_path_factory.mktemp("van-01")
    keys = watchlist_keys
    config = load_config(overrides={
        "device.id": "van-01", "device.data_dir": str(data),
        "watchlist.control_room_key": str(keys / "control-room.ed25519.pub"),
        "watchlist.device_key": str(keys / "van-01.x25519.key"),
        "models.embedder": pipeline.model_id,
        **{f"mqtt.{k}": v for k, v in tls_broker.mqtt_config("van-01").items()},
    })
    matcher = MatchService.for_embedder(config.matcher, pipeline.embedder_spec, models_root=config.models.dir)
    store = open_store(config)
    receiver = make_receiver(config, store, on_applied=gallery_swapper(matcher))
    service = make_sync_service(config, receiver).start()
    entries, probes = lfw_watchlist
    out = tmp_path_factory.mktemp("bundles")

    def build(name, *, version, entries=entries, signer="control-room", devices=("van-01",), model=None, **kw):
        return build_bundle(
            entries, out / f"{name}.lfrwl", watchlist_id=kw.pop("watchlist_id", WL),
            model_id=model or pipeline.model_id, signing_key=load_signing_key(keys / f"{signer}.ed25519.key"),
            recipients=[(d, load_device_public(keys / f"{d}.x25519.pub")) for d in devices], version=version, **kw,
        ).path

    def publish(path, **kw):
        before = service.processed
        res = publish_bundle(tls_broker.settings("control-room", "cr-publisher"), path, ["van-01"],
                             chunk_bytes=kw.pop("chunk_bytes", 8 * 1024), wait_ack_s=kw.pop("wait_ack_s", 30), **kw)
        if res.acks:
            assert service.wait_processed(before + 1, 10)
            if res.acks["van-01"]["status"] == "applied":
                ns.last_applied = path
        return res

    def ensure_applied():
        """Some watchlist is active (the good v2 bundle, unless an earlier test applied another)."""
        if store.meta() is None:
            assert publish(build("v2", version=2)).acks["van-01"]["status"] == "applied"

    def identifies(subject_id):
        faces = pipeline.process(probes[subject_id])
        match = matcher.identify(faces[0].embedding)
        return match is not None and match.subject_id == subject_id

    ns = type("Env", (), dict(config=config, store=store, service=service, matcher=matcher, build=build,
                              publish=publish, identifies=identifies, out=out, data=data, entries=entries,
                              ensure_applied=ensure_applied, last_applied=None))
    yield ns
    service.stop()
    store.close()


def ack_of(res, device="van-01"):
    ack = res.acks.get(device)
    assert ack is not None, "no ack"
    assert first_error("watchlist_ack", ack) is None, first_error("watchlist_ack", ack)
    return ack


def test_good_bundle_applied_acked_and_matched(env):
    version = (env.store.meta() or {"version": 1})["version"] + 1
    res = env.publish(env.build(f"v{version}", version=version))
    assert res.chunks >= 4  # really chunked
    ack = ack_of(res)
    assert ack["status"] == "applied" and ack["version"] == version and ack["reason"] is None
    st = env.store.status()
    assert st["version"] == version and ack["watchlist_sha256"] == st["watchlist_sha256"]
    assert st["subjects"] == len(env.entries) and st["last_sync"]["status"] == "applied"
    assert env.matcher.gallery.version == version and env.matcher.gallery.hash == st["watchlist_sha256"]
    for sid in ("S-000", "S-003"):
        assert env.identifies(sid)


def flip_byte(src, dst, where):
    data = bytearray(src.read_bytes())
    i = {"header": 40, "payload": len(data) - 1000}[where]
    data[i] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def make_case(env, case):
    good = env.last_applied
    version = env.store.meta()["version"] + 1
    if case == "flipped_byte_payload":
        return flip_byte(good, env.out / "flip-p.lfrwl", "payload"), "tampered"
    if case == "flipped_byte_header":
        return flip_byte(good, env.out / "flip-h.lfrwl", "header"), ("bad_signature", "malformed", "wrong_signer")
    if case == "wrong_signer":
        return env.build("rogue", version=version, signer="rogue"), "wrong_signer"
    if case == "replay":
        return good, "replay"  # the very bundle that is active
    if case == "older_version":
        return env.build("v1", version=1), "older_version"
    if case == "other_model":
        return env.build("model", version=version, model="mobilefacenet-fp32"), "wrong_model"
    if case == "expired":
        past = utcnow() - timedelta(days=10)
        return env.build("expired", version=version, issued_at=past, expires_at=past + timedelta(days=1)), "expired"
    if case == "truncated":
        p = env.out / "trunc.lfrwl"
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return p, "truncated"
    if case == "random_bytes":
        p = env.out / "random.lfrwl"
        p.write_bytes(os.urandom(50_000))
        return p, "malformed"
    if case == "other_device":
        return env.build("van02", version=version, devices=("van-02",)), "not_for_this_device"
    if case == "missing_required_field":
        bad = list(env.entries)
        meta = dict(bad[1].meta)
        del meta["legal_basis"]
        bad[1] = Entry(meta, bad[1].templates, bad[1].photo_jpeg)
        return env.build("nolegal", version=version, entries=bad, validate=False), "invalid_entry"
    raise AssertionError(case)


CASES = ["flipped_byte_payload", "flipped_byte_header", "wrong_signer", "replay", "older_version", "other_model",
         "expired", "truncated", "random_bytes", "other_device", "missing_required_field"]


@pytest.mark.parametrize("case", CASES)
def test_bad_bundle_refused_previous_keeps_working(env, case):
    env.ensure_applied()
    before = env.store.status()
    path, expected = make_case(env, case)
    ack = ack_of(env.publish(path))
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert ack["status"] == "refused" and ack["reason"] in expected, ack
    assert ack["detail"]
    assert ack["active"]["version"] == before["version"]
    assert ack["active"]["watchlist_sha256"] == before["watchlist_sha256"]
    after = env.store.status()
    assert after["watchlist_sha256"] == before["watchlist_sha256"] and after["subjects"] == before["subjects"]
    assert after["last_refusal"]["reason"] == ack["reason"]
    env.store.check_integrity()
    assert env.matcher.gallery.version == before["version"]
    assert env.identifies("S-001")


def test_delta_bundle_adds_and_removes(env):
    from appliance.watchlist.builder import load_state, state_path_for

    v = env.store.meta()["version"] if env.store.meta() else 0
    full = env.build("delta-base", version=v + 1)
    assert ack_of(env.publish(full))["status"] == "applied"
    assert env.identifies("S-000")
    base = load_state(state_path_for(full))
    res = env.publish(env.build("delta", entries=env.entries[1:], base_state=base, version=None))
    ack = ack_of(res)
    assert ack["status"] == "applied" and ack["version"] == v + 2, ack
    st = env.store.status()
    assert st["subjects"] == len(env.entries) - 1 and env.store.subject("S-000") is None
    assert not env.identifies("S-000") and env.identifies("S-002")
    # a delta against a base the device no longer has is refused
    res = env.publish(env.build("stale-delta", version=v + 3, entries=env.entries, base_state=base))
    assert ack_of(res)["reason"] == "base_mismatch"


def test_cut_transfer_resumes_after_reconnect(env, tls_broker):
    """Half the chunks arrive, the van goes offline, the rest is sent while it is away; on reconnect its
    persistent session delivers them and the spooled half is reused: applied once, acked."""
    version = (env.store.meta() or {"version": 0})["version"] + 1
    path = env.build("resume", version=version)
    count, _ = split(path, 8 * 1024, b"\0" * 16)
    tid = os.urandom(16).hex()
    first = set(range(count // 2))
    env.publish(path, transfer_id=tid, only=first, wait_ack_s=0)
    spool = env.service.spool
    deadline = utcnow() + timedelta(seconds=10)
    while spool.received(bytes.fromhex(tid)) < len(first) and utcnow() < deadline:
        pass
    assert spool.received(bytes.fromhex(tid)) == len(first) and not spool.is_complete(bytes.fromhex(tid))
    env.service.conn.close()  # the van drops off the network
    before = env.service.processed
    rest = publish_bundle(tls_broker.settings("control-room", "cr-publisher"), path, ["van-01"], chunk_bytes=8 * 1024,
                          transfer_id=tid, only=set(range(count)) - first, wait_ack_s=0)
    assert rest.transfer_id == tid
    env.service.conn.connect()  # back online: same client id, persistent session
    assert env.service.wait_processed(before + 1, 20)
    ack = env.service.last_ack
    assert ack["transfer_id"] == tid and ack["status"] == "applied" and ack["version"] == version, ack
    assert not spool.transfers()
    # the whole transfer sent again (a restart from scratch) is now a replay, refused
    res = env.publish(path, transfer_id=os.urandom(16).hex())
    assert ack_of(res)["reason"] == "replay"


def test_devices_stay_inside_their_own_topics(env, tls_broker):
    got = []
    intruder = MqttConnection(tls_broker.settings("van-02", "van-02-intruder"),
                              on_message=lambda m: got.append(m.topic), clean_start=True).connect()
    try:
        # van-02 may not publish as van-01, nor send bundles or commands to anyone
        for topic in (topics.watchlist_ack("van-01"), topics.alerts("van-01"), topics.watchlist_bundles("van-01"),
                      topics.commands("van-01"), topics.watchlist_bundles("van-02"), "lfr/v1/other"):
            with pytest.raises(SyncError, match="Not authorized"):
                intruder.publish(topic, b"{}").wait(5)
        # its own outbound topics are fine
        intruder.publish(topics.status("van-02"), json.dumps({"schema": "x"})).wait(5)
        # Mosquitto 2.0 may grant the SUBACK, but nothing meant for van-01 is ever delivered to van-02
        try:
            intruder.subscribe(topics.watchlist_bundles("van-01"))
            intruder.subscribe("lfr/v1/devices/+/watchlist/bundles")
        except SyncError:
            pass  # refused outright is fine too
        intruder.subscribe(topics.watchlist_bundles("van-02"))
        before = env.service.processed
        env.publish(env.build("for-van01", version=env.store.meta()["version"] + 1 if env.store.meta() else 1))
        assert env.service.processed == before + 1
        # ... and van-02 gets only its own bundle's chunks
        van02 = env.build("for-van02", version=50, devices=("van-02",))
        publish_bundle(tls_broker.settings("control-room", "cr-publisher"), van02, ["van-02"],
                       chunk_bytes=8 * 1024, wait_ack_s=0)
        deadline = utcnow() + timedelta(seconds=5)
        while topics.watchlist_bundles("van-02") not in got and utcnow() < deadline:
            pass
        assert topics.watchlist_bundles("van-02") in got
        assert set(got) == {topics.watchlist_bundles("van-02")}
    finally:
        intruder.close()


def test_wrong_client_certificate_is_refused(tmp_path, tls_broker):
    from mosquitto_fixtures import make_pki

    other = make_pki(tmp_path / "other-ca", ["van-01"])
    from appliance.sync.mqtt import MqttSettings

    s = MqttSettings.from_url(tls_broker.url, "van-01-fake", ca_file=tls_broker.ca, cert_file=other / "van-01.crt",
                              key_file=other / "van-01.key")
    with pytest.raises(SyncError):
        MqttConnection(s).connect(timeout=5)


def test_plain_sqlite3_cannot_read_the_watchlist(env):
    import sqlite3

    env.ensure_applied()
    env.store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = env.data / "watchlist.db"
    assert db.exists()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(db).execute("SELECT count(*) FROM subjects").fetchone()
    raw = db.read_bytes()
    assert b"Aaron" not in raw and b"test warrant" not in raw
    assert np.frombuffer(raw[:16], dtype=np.uint8).tolist() != list(b"SQLite format 3\x00")


def test_publish_command(env, tls_broker, capsys):
    from appliance.cli.main import main

    env.ensure_applied()
    path = env.build("cli", version=env.store.meta()["version"] + 1)
    args = ["watchlist", "publish", str(path), "--broker", tls_broker.control_url, "--device", "van-01",
            "--ca", str(tls_broker.ca), "--cert", str(tls_broker.cert("control-room")),
            "--key", str(tls_broker.key("control-room")), "--chunk-bytes", "8192", "--wait-ack", "30"]
    before = env.service.processed
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "van-01: applied wl-test" in out and "chunks" in out
    assert env.service.wait_processed(before + 1, 5)
    assert main(args) == 1  # the same bundle again: refused as a replay, and the exit status says so
    assert "van-01: refused (replay)" in capsys.readouterr().out
    env.service.wait_processed(before + 2, 5)
    # a wrong CA: one clear line, exit 2
    args[args.index("--ca") + 1] = str(tls_broker.cert("van-01"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TLS" in err


def test_chunk_not_on_disk_is_not_acknowledged_and_comes_again(env, monkeypatch):
    """A chunk the van failed to write (disk full) gets no PUBACK, so the broker delivers it again on
    reconnect: nothing acknowledged is ever lost."""
    env.ensure_applied()
    path = env.build("diskfull", version=env.store.meta()["version"] + 1)
    real_add = env.service.spool.add
    failed = []

    def flaky_add(chunk):
        if chunk.index == 1 and not failed:
            failed.append(chunk.index)
            raise OSError(28, "No space left on device")
        return real_add(chunk)

    monkeypatch.setattr(env.service.spool, "add", flaky_add)
    before = env.service.processed
    res = env.publish(path, wait_ack_s=0)
    tid = bytes.fromhex(res.transfer_id)
    deadline = utcnow() + timedelta(seconds=10)
    while env.service.spool.received(tid) < res.chunks - 1 and utcnow() < deadline:
        pass
    assert failed == [1] and not env.service.spool.is_complete(tid)
    env.service.conn.close()
    env.service.conn.connect()  # the broker redelivers the unacknowledged chunk
    assert env.service.wait_processed(before + 1, 20)
    assert env.service.last_ack["transfer_id"] == res.transfer_id and env.service.last_ack["status"] == "applied"
