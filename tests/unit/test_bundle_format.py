"""The bundle file: signed header, AES-GCM stream payload wrapped per device; every refusal at the format level."""

from __future__ import annotations

import hashlib
import io
import struct
from datetime import timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.watchlist.bundle import MAGIC, BundleRefused, open_bundle, read_header_unverified, write_bundle
from appliance.watchlist.envelope import SegmentReader, StreamParams, decrypt_stream, encrypt_stream
from appliance.watchlist.records import Entry, encode_add, encode_remove, read_records, state_hash
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import iso, utcnow

SK = Ed25519PrivateKey.generate()
DEV = {d: X25519PrivateKey.generate() for d in ("van-01", "van-02", "van-03")}


def entry(i: int, dim: int = 128) -> Entry:
    t = np.random.default_rng(i).standard_normal((2, dim)).astype(np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    meta = {"id": f"S-{i}", "display_name": f"P {i}", "category": "wanted", "legal_basis": "b",
            "image_source": "c", "expires_at": iso(utcnow() + timedelta(days=9))}
    return Entry(meta, t, b"\xff\xd8\xff" + bytes(range(256)) * (i + 1))


def make(tmp_path, entries=None, devices=("van-01",), segment=1024, name="b.lfrwl", signer=SK):
    entries = entries if entries is not None else [entry(i) for i in range(5)]
    payload = b"".join(encode_add(e) for e in entries)
    fields = {"watchlist_id": "wl", "version": 3, "kind": "full", "base_version": None, "model_id": "m",
              "issued_at": iso(utcnow()), "expires_at": iso(utcnow() + timedelta(days=1)),
              "entry_count": len(entries), "remove_count": 0,
              "content_sha256": hashlib.sha256(payload).hexdigest(),
              "watchlist_sha256": state_hash("wl", [])}
    path = tmp_path / name
    header = write_bundle(path, fields, io.BytesIO(payload), len(payload), signer,
                          [(d, DEV[d].public_key()) for d in devices], segment_bytes=segment)
    return path, header, entries


def refused(path, device="van-01", verify=None) -> str:
    with pytest.raises(BundleRefused) as e:
        b = open_bundle(path, verify or SK.public_key(), device, DEV[device])
        list(b.records())
    return e.value.reason


def test_roundtrip_to_several_devices(tmp_path):
    path, header, entries = make(tmp_path, devices=("van-01", "van-02"))
    assert first_error("watchlist_bundle_header", header) is None
    assert path.read_bytes().startswith(MAGIC)
    for dev in ("van-01", "van-02"):
        got = list(open_bundle(path, SK.public_key(), dev, DEV[dev]).records())
        assert [r.meta["id"] for r in got] == [e.id for e in entries]
        for r, e in zip(got, entries, strict=True):
            np.testing.assert_array_equal(r.entry.templates, e.templates)
            assert r.entry.photo_jpeg == e.photo_jpeg
    assert refused(path, "van-03") == "not_for_this_device"


def test_payload_is_encrypted(tmp_path):
    path, _, entries = make(tmp_path)
    raw = path.read_bytes()
    assert b"wanted" not in raw and entries[0].photo_jpeg[3:40] not in raw
    assert entries[0].templates.astype("<f4").tobytes()[:16] not in raw


@pytest.mark.parametrize("segment", [1024, 4096, 1 << 20])
def test_segment_sizes_including_exact_multiples(tmp_path, segment):
    path, _, entries = make(tmp_path, segment=segment)
    assert len(list(open_bundle(path, SK.public_key(), "van-01", DEV["van-01"]).records())) == len(entries)


def test_empty_payload(tmp_path):
    path, header, _ = make(tmp_path, entries=[])
    assert header["payload"]["size"] == 16
    assert list(open_bundle(path, SK.public_key(), "van-01", DEV["van-01"]).records()) == []


def test_every_flipped_byte_is_refused(tmp_path):
    path, _, _ = make(tmp_path, entries=[entry(1)])
    data = path.read_bytes()
    reasons = set()
    for i in range(0, len(data), max(1, len(data) // 97)):  # a spread of positions over the whole file
        bad = bytearray(data)
        bad[i] ^= 0x20
        p = tmp_path / "flip.lfrwl"
        p.write_bytes(bytes(bad))
        reasons.add(refused(p))
    assert reasons <= {"malformed", "truncated", "wrong_signer", "bad_signature", "tampered"}
    assert {"bad_signature", "tampered"} <= reasons


def test_wrong_signer_and_forged_key_id(tmp_path):
    rogue = Ed25519PrivateKey.generate()
    path, _, _ = make(tmp_path, signer=rogue)
    assert refused(path) == "wrong_signer"
    # a header that names the pinned key but is signed by another: the signature itself fails
    good, _header, _ = make(tmp_path, name="g.lfrwl")
    data = good.read_bytes()
    (n,) = struct.unpack(">I", data[8:12])
    forged = data[: 12 + n] + rogue.sign(data[: 12 + n]) + data[12 + n + 64:]
    (tmp_path / "forged.lfrwl").write_bytes(forged)
    assert refused(tmp_path / "forged.lfrwl") == "bad_signature"


@pytest.mark.parametrize("keep", [0, 5, 11, 100, 400, -1])
def test_truncated_anywhere(tmp_path, keep):
    path, _, _ = make(tmp_path)
    data = path.read_bytes()
    cut = data[:keep] if keep >= 0 else data[:-1]
    (tmp_path / "t.lfrwl").write_bytes(cut)
    assert refused(tmp_path / "t.lfrwl") in ("truncated", "malformed")
    if keep in (11, -1):
        assert refused(tmp_path / "t.lfrwl") == "truncated"


def test_trailing_bytes_refused(tmp_path):
    path, _, _ = make(tmp_path)
    path.write_bytes(path.read_bytes() + b"x")
    assert refused(path) == "tampered"


def test_random_bytes_refused(tmp_path):
    p = tmp_path / "r"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    assert refused(p) == "malformed"


def test_device_key_mismatch(tmp_path):
    path, _, _ = make(tmp_path)
    other = X25519PrivateKey.generate()
    with pytest.raises(BundleRefused) as e:
        open_bundle(path, SK.public_key(), "van-01", other)
    assert e.value.reason == "not_for_this_device" and "key" in e.value.detail


def test_unverified_header_for_reports_only(tmp_path):
    path, header, _ = make(tmp_path)
    assert read_header_unverified(path)["bundle_id"] == header["bundle_id"]
    p = tmp_path / "junk"
    p.write_bytes(b"nope")
    assert read_header_unverified(p) is None


def test_stream_detects_reordered_segments():
    key = bytes(32)
    p = StreamParams(key, bytes(7), 16, bytes(16))
    plain = bytes(range(64))
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), len(plain), out, p)
    ct = out.getvalue()
    seg = 16 + 16
    assert b"".join(decrypt_stream(io.BytesIO(ct), len(ct), p)) == plain
    swapped = ct[seg:2 * seg] + ct[:seg] + ct[2 * seg:]
    with pytest.raises(ValueError):
        list(decrypt_stream(io.BytesIO(swapped), len(swapped), p))
    dropped_last = ct[: 3 * seg]  # the last-segment flag catches a cut on a segment boundary
    with pytest.raises(ValueError):
        list(decrypt_stream(io.BytesIO(dropped_last), len(dropped_last), p))


def test_segment_reader_reads_across_boundaries():
    data = bytes(range(256)) * 40
    segs = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    r = SegmentReader(iter(segs))
    out, rng = [], np.random.default_rng(1)
    while True:
        b = r.read(int(rng.integers(1, 3000)))
        if not b:
            break
        out.append(b)
    assert b"".join(out) == data


def test_records_roundtrip_and_remove():
    e = entry(4)
    stream = io.BytesIO(encode_remove("S-9") + encode_add(e))
    recs = list(read_records(stream))
    assert [r.op for r in recs] == ["remove", "add"] and recs[0].meta == {"id": "S-9"}
    assert recs[1].digest == hashlib.sha256(encode_add(e)).hexdigest()
    assert "templates=2" in repr(recs[1].entry) and "S-4" in repr(recs[1].entry)


def test_state_hash_is_order_independent_and_content_sensitive():
    a = state_hash("wl", [("a", "1"), ("b", "2")])
    assert a == state_hash("wl", [("b", "2"), ("a", "1")])
    assert a != state_hash("wl", [("a", "1"), ("b", "3")]) and a != state_hash("wl2", [("a", "1"), ("b", "2")])
