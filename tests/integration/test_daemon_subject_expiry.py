"""A subject whose own expiry passes while the daemon runs is never matched again: no restart, no new watchlist.

The real daemon (`Appliance`) with a real SQLCipher watchlist of two subjects, one of whom expires a few
seconds after the start. The frame thread swaps the smaller gallery in between frames, and the audit log says
who left it. (Before, `ExpiryWatcher` did this in a test only: nothing in the daemon started it.)
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
from accountability_helpers import provision_device
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.audit.chain import iter_entries
from appliance.daemon.assembly import open_store
from appliance.daemon.service import Appliance
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.records import Entry
from appliance.watchlist.timeutil import iso, utcnow

EXPIRES_IN_S = 4


def _entry(i: int, expires_in: timedelta) -> Entry:
    t = np.random.default_rng(i).standard_normal(128).astype(np.float32)
    return Entry({"id": f"S-{i}", "display_name": f"Person {i}", "category": "wanted", "legal_basis": "b",
                  "image_source": "c", "expires_at": iso(utcnow() + expires_in)},
                 (t / np.linalg.norm(t))[None, :], b"\xff\xd8\xff" + bytes([i]) * 50)


def test_a_subject_expiring_while_the_daemon_runs_is_never_matched_again(tmp_path, crowd_dir):
    config, cfg_path, sk = provision_device(tmp_path, n_subjects=0)
    staying, leaving = _entry(1, timedelta(days=30)), _entry(2, timedelta(seconds=EXPIRES_IN_S))
    dx = X25519PrivateKey.generate()
    built = build_bundle([staying, leaving], tmp_path / "wl.lfrwl", watchlist_id="met-wanted",
                         model_id="mobilefacenet-int8", signing_key=sk, recipients=[("van-01", dx.public_key())],
                         version=2)
    store = open_store(config)
    store.apply(open_bundle(built.path, sk.public_key(), "van-01", dx), model_id="mobilefacenet-int8")
    store.close()

    app = Appliance(config, cfg_path, source=str(crowd_dir), with_mqtt=False, with_console=False)
    app.start()
    try:
        assert set(app.matcher.gallery.subjects) == {"S-1", "S-2"}
        assert app.matcher.identify(leaving.templates[0]).subject_id == "S-2"
        deadline = time.monotonic() + EXPIRES_IN_S + 20
        while "S-2" in app.matcher.gallery.subjects and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app.matcher.gallery.subjects == ("S-1",), "the expired subject is still in the running gallery"
        assert app.matcher.identify(leaving.templates[0]) is None  # never matched again
        assert app.matcher.identify(staying.templates[0]).subject_id == "S-1"  # the others still are
        entries = [e for e in iter_entries(app.events.db) if e.kind == "watchlist.subjects_expired"]
        assert len(entries) == 1
        assert entries[0].data["subjects"] == ["S-2"] and entries[0].data["whole_watchlist"] is False
    finally:
        app.stop()
