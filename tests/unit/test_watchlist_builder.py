"""Building bundles: full and delta against a base state, versions, required metadata, expiry."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import WatchlistError
from appliance.watchlist.builder import build_bundle, load_state
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.records import Entry, state_hash
from appliance.watchlist.timeutil import iso, utcnow

SK = Ed25519PrivateKey.generate()
DK = X25519PrivateKey.generate()


def entry(i, **kw):
    t = np.zeros((1, 128), np.float32)
    t[0, i % 128] = 1.0
    m = {"id": f"S-{i}", "display_name": f"P{i}", "category": "wanted", "legal_basis": "b", "image_source": "c",
         "expires_at": iso(utcnow() + timedelta(days=30)), **kw}
    return Entry({k: v for k, v in m.items() if v is not None}, t, b"\xff\xd8\xff\xe0photo")


def build(tmp_path, entries, name="b", **kw):
    kw.setdefault("version", None if "base_state" in kw else 1)
    return build_bundle(entries, tmp_path / f"{name}.lfrwl", watchlist_id="wl", model_id="m", signing_key=SK,
                        recipients=[("van-01", DK.public_key())], **kw)


def records(built):
    return list(open_bundle(built.path, SK.public_key(), "van-01", DK).records())


def test_full_bundle_and_state(tmp_path):
    b = build(tmp_path, [entry(i) for i in range(3)])
    assert b.header["kind"] == "full" and b.header["entry_count"] == 3 and b.header["base_version"] is None
    state = load_state(b.state_path)
    assert state["version"] == 1 and set(state["entries"]) == {"S-0", "S-1", "S-2"}
    assert state["watchlist_sha256"] == b.header["watchlist_sha256"] == state_hash("wl", state["entries"].items())
    assert [r.meta["id"] for r in records(b)] == ["S-0", "S-1", "S-2"]
    assert "P1" not in b.state_path.read_text()  # the state file holds hashes, not names


def test_delta_adds_changes_and_removes(tmp_path):
    base = load_state(build(tmp_path, [entry(i) for i in range(4)]).state_path)
    new = [entry(0), entry(1, notes="moved"), entry(3), entry(7)]  # S-2 gone, S-1 changed, S-7 new
    d = build(tmp_path, new, name="d", base_state=base)
    h = d.header
    assert h["kind"] == "delta" and h["version"] == 2 and h["base_version"] == 1
    assert sorted(d.added) == ["S-1", "S-7"] and d.removed == ["S-2"] and d.unchanged == 2
    recs = records(d)
    assert [(r.op, r.meta["id"]) for r in recs] == [("remove", "S-2"), ("add", "S-1"), ("add", "S-7")]
    full = build(tmp_path, new, name="f", version=2)
    assert h["watchlist_sha256"] == full.header["watchlist_sha256"]  # same resulting state either way


def test_delta_checks_base(tmp_path):
    base = load_state(build(tmp_path, [entry(1)]).state_path)
    with pytest.raises(WatchlistError, match="above the base version"):
        build(tmp_path, [entry(1)], base_state=base, version=1)
    other = dict(base, watchlist_id="other")
    with pytest.raises(WatchlistError, match="base state is for watchlist other"):
        build(tmp_path, [entry(1)], base_state=other)
    with pytest.raises(WatchlistError, match="model"):
        build(tmp_path, [entry(1)], base_state=dict(base, model_id="x"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(WatchlistError, match="not a watchlist state file"):
        load_state(tmp_path / "bad.json")


@pytest.mark.parametrize("field", ["category", "legal_basis", "image_source", "expires_at"])
def test_required_metadata_enforced(tmp_path, field):
    with pytest.raises(WatchlistError, match=f"subject S-1: missing {field}"):
        build(tmp_path, [entry(0), entry(1, **{field: None})])


def test_other_refusals(tmp_path):
    with pytest.raises(WatchlistError, match="expired"):
        build(tmp_path, [entry(1, expires_at="2001-01-01T00:00:00Z")])
    with pytest.raises(WatchlistError, match="twice"):
        build(tmp_path, [entry(1), entry(1)])
    with pytest.raises(WatchlistError, match="--version"):
        build(tmp_path, [entry(1)], version=None)
    now = utcnow()
    with pytest.raises(WatchlistError, match="expire before"):
        build(tmp_path, [entry(1)], issued_at=now, expires_at=now - timedelta(seconds=1))
    bad = entry(1)
    bad = Entry(bad.meta, bad.templates * 2, bad.photo_jpeg)
    with pytest.raises(WatchlistError, match="not L2-normalised"):
        build(tmp_path, [bad])
    nojpeg = Entry(entry(2).meta, entry(2).templates, b"PNG")
    with pytest.raises(WatchlistError, match="not a JPEG"):
        build(tmp_path, [nojpeg])
