"""The van's watchlist store on real SQLCipher: apply, delta, expiry, revocation, and refusals found only
while applying (hash mismatch, unknown removals, bad entries) leave the previous list untouched."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.storage import KeyFileProvider
from appliance.watchlist.builder import build_bundle, load_state
from appliance.watchlist.bundle import BundleRefused, open_bundle, write_bundle
from appliance.watchlist.records import Entry, encode_add, encode_remove, state_hash
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.timeutil import iso, utcnow

SK = Ed25519PrivateKey.generate()
DK = X25519PrivateKey.generate()


def entry(i, days=30):
    t = np.random.default_rng(i).standard_normal((1, 128)).astype(np.float32)
    t /= np.linalg.norm(t)
    m = {"id": f"S-{i}", "display_name": f"P{i}", "category": "wanted", "legal_basis": "b", "image_source": "c",
         "expires_at": iso(utcnow() + timedelta(days=days))}
    return Entry(m, t, b"\xff\xd8\xff" + bytes([i]) * 50)


@pytest.fixture
def store(tmp_path):
    s = WatchlistStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "data" / "keys"))
    yield s
    s.close()


def bundle(tmp_path, entries, version, name=None, **kw):
    return build_bundle(entries, tmp_path / f"{name or version}.lfrwl", watchlist_id="wl", model_id="m",
                        signing_key=SK, recipients=[("van-01", DK.public_key())], version=version, **kw)


def apply(store, path, **kw):
    return store.apply(open_bundle(path, SK.public_key(), "van-01", DK), model_id="m", **kw)


def raw_bundle(tmp_path, payload: bytes, **fields):
    base = {"watchlist_id": "wl", "version": 9, "kind": "full", "base_version": None, "model_id": "m",
            "issued_at": iso(utcnow()), "expires_at": iso(utcnow() + timedelta(days=1)), "entry_count": 1,
            "remove_count": 0, "content_sha256": hashlib.sha256(payload).hexdigest(),
            "watchlist_sha256": state_hash("wl", [])}
    base.update(fields)
    p = tmp_path / "raw.lfrwl"
    write_bundle(p, base, io.BytesIO(payload), len(payload), SK, [("van-01", DK.public_key())])
    return p


def test_apply_full_then_delta(tmp_path, store):
    b1 = bundle(tmp_path, [entry(i) for i in range(3)], 1)
    active = apply(store, b1.path)
    assert active["subjects"] == 3 and active["version"] == 1
    assert store.reference_photo("S-1") == entry(1).photo_jpeg
    g = store.load_gallery()
    assert g.n_subjects == 3 and g.hash == b1.header["watchlist_sha256"] and g.metadata["S-2"]["category"] == "wanted"
    d = bundle(tmp_path, [entry(0), entry(5)], None, name="d", base_state=load_state(b1.state_path))
    apply(store, d.path)
    store.check_integrity()
    assert {s for s in store.load_gallery().subjects} == {"S-0", "S-5"}
    assert store.subject("S-1") is None and store.reference_photo("S-1") is None  # templates/photos cascade
    assert store.counts() == (2, 2)


def test_expiry_stops_matching(tmp_path, store):
    apply(store, bundle(tmp_path, [entry(1), entry(2, days=2)], 1).path)
    assert store.load_gallery(now=utcnow() + timedelta(days=1)).n_subjects == 2
    assert store.load_gallery(now=utcnow() + timedelta(days=3)).subjects == ("S-1",)  # a subject expired
    assert store.load_gallery(now=utcnow() + timedelta(days=8)).n_subjects == 0  # the bundle expired
    assert store.status(now=utcnow() + timedelta(days=8))["expired"] is True


def test_revoked_list_cannot_be_replayed(tmp_path, store):
    b = bundle(tmp_path, [entry(1)], 4)
    apply(store, b.path)
    store.revoke()
    assert store.meta() is None and store.load_gallery().n_subjects == 0
    with pytest.raises(BundleRefused) as e:
        apply(store, b.path)
    assert e.value.reason == "replay"


def expect(store, path, reason):
    before = store.status()
    with pytest.raises(BundleRefused) as e:
        apply(store, path)
    assert e.value.reason == reason, e.value
    after = store.status()
    assert (after["version"], after["watchlist_sha256"], after["subjects"]) == (
        before["version"], before["watchlist_sha256"], before["subjects"])
    store.check_integrity()
    return e.value


def test_refusals_found_while_applying_roll_back(tmp_path, store):
    apply(store, bundle(tmp_path, [entry(i) for i in range(3)], 1).path)
    rec = encode_add(entry(7))
    expect(store, raw_bundle(tmp_path, rec), "hash_mismatch")  # the signed state hash is not what results
    expect(store, raw_bundle(tmp_path, rec, entry_count=2), "tampered")  # counts differ from the header
    rm = encode_remove("S-99")
    d = raw_bundle(tmp_path, rm, kind="delta", base_version=1, entry_count=0, remove_count=1)
    assert "S-99" in expect(store, d, "invalid_entry").detail
    expect(store, raw_bundle(tmp_path, b"\x00garbage"), "invalid_entry")
    bad = entry(8)
    bad_dim = Entry(bad.meta, np.ones((1, 64), np.float32) / 8.0, bad.photo_jpeg)
    p = raw_bundle(tmp_path, encode_add(bad_dim))
    with pytest.raises(BundleRefused) as e:
        store.apply(open_bundle(p, SK.public_key(), "van-01", DK), model_id="m", dim=128)
    assert e.value.reason == "invalid_entry" and "dimension" in e.value.detail


def test_header_checks(tmp_path, store):
    apply(store, bundle(tmp_path, [entry(1)], 5).path)
    expect(store, bundle(tmp_path, [entry(1)], 5, name="again").path, "replay")
    expect(store, bundle(tmp_path, [entry(1)], 4).path, "older_version")
    future = utcnow() + timedelta(hours=2)
    expect(store, bundle(tmp_path, [entry(1)], 6, issued_at=future, expires_at=future + timedelta(days=1)).path,
           "not_yet_valid")
    with pytest.raises(BundleRefused) as e:
        store.apply(open_bundle(bundle(tmp_path, [entry(1)], 7).path, SK.public_key(), "van-01", DK), model_id="x")
    assert e.value.reason == "wrong_model"
    # another watchlist id has its own versions; a delta needs the device's current base
    other = build_bundle([entry(2)], tmp_path / "o.lfrwl", watchlist_id="wl-b", model_id="m", signing_key=SK,
                         recipients=[("van-01", DK.public_key())], version=1)
    d = build_bundle([entry(2), entry(3)], tmp_path / "od.lfrwl", watchlist_id="wl-b", model_id="m", signing_key=SK,
                     recipients=[("van-01", DK.public_key())], base_state=load_state(other.state_path))
    expect(store, d.path, "base_mismatch")
    apply(store, other.path)
    apply(store, d.path)
    assert store.status()["watchlist_id"] == "wl-b" and store.status()["subjects"] == 2


def test_templates_of_mixed_sizes_refused(tmp_path, store):
    e64 = Entry(entry(2).meta, np.ones((1, 64), np.float32) / 8.0, entry(2).photo_jpeg)
    b = bundle(tmp_path, [entry(1), e64], 1)
    with pytest.raises(BundleRefused) as e:
        apply(store, b.path)
    assert e.value.reason == "invalid_entry" and "dimension 64" in e.value.detail
    apply(store, bundle(tmp_path, [entry(1)], 2, name="ok").path)
    d = bundle(tmp_path, [entry(1), e64], None, name="d", base_state=load_state(tmp_path / "ok.lfrwl.state.json"))
    with pytest.raises(BundleRefused):
        apply(store, d.path)


def test_receiver_reports_a_matcher_that_did_not_take_the_list(tmp_path, store):
    from appliance.watchlist.receiver import WatchlistReceiver

    def broken_swap(_store):
        raise RuntimeError("index build failed")

    rx = WatchlistReceiver(store, "van-01", SK.public_key(), DK, "m", dim=128, on_applied=broken_swap)
    ack = rx.process(bundle(tmp_path, [entry(1)], 1).path, transfer_id="ab" * 16)
    assert ack["status"] == "applied" and "index build failed" in ack["detail"]
    assert set(rx.timings) == {"verify_s", "apply_s", "swap_s"}
    assert store.applied_event("ab" * 16)["version"] == 1
    again = rx.applied_ack("ab" * 16, ack["bundle_sha256"])
    assert again["status"] == "applied" and again["watchlist_sha256"] == ack["watchlist_sha256"]


def test_a_subject_past_its_expiry_leaves_the_gallery(tmp_path, store):
    """The store's side of subject expiry (the daemon's side: test_daemon_subject_expiry.py)."""
    from appliance.matching import MatchService

    soon = entry(2)
    soon = Entry({**soon.meta, "expires_at": iso(utcnow() + timedelta(seconds=1))}, soon.templates, soon.photo_jpeg)
    apply(store, bundle(tmp_path, [entry(1), soon], 1).path)
    assert store.next_expiry() == datetime_of(soon.meta["expires_at"])
    later = datetime_of(soon.meta["expires_at"]) + timedelta(seconds=1)
    matcher = MatchService(0.5, gallery=store.load_gallery(now=later))
    assert matcher.gallery.subjects == ("S-1",)
    assert matcher.identify(soon.templates[0]) is None  # an expired subject is never matched
    assert store.next_expiry(now=later) != datetime_of(soon.meta["expires_at"])


def datetime_of(text):
    from appliance.watchlist.timeutil import parse_time

    return parse_time(text)
