"""build_safeguards() over the van's real parts (SQLCipher events and watchlist, the matcher, the manifest):
the gate follows deployments, the record snapshots the loaded list and model, a wipe on end empties the
matcher and the database, and a signed revoke through the handler does all its steps."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import numpy as np
import pytest
from accountability_helpers import request
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.commands.signing import build_command, sign_command
from appliance.config import load_config
from appliance.daemon.assembly import build_safeguards, open_store
from appliance.events.store import EventStore
from appliance.keys.keypairs import generate_control_room, generate_device, load_signing_key
from appliance.matching.service import MatchService
from appliance.matching.threshold import resolve_threshold
from appliance.runtime.manifest import load_manifest
from appliance.storage import key_provider_from_config
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.records import Entry
from appliance.watchlist.timeutil import iso, utcnow

MODEL = "mobilefacenet-int8"


def template(i):
    t = np.random.default_rng(i).standard_normal(128).astype(np.float32)
    return t / np.linalg.norm(t)


@pytest.fixture
def van(tmp_path):
    data = tmp_path / "data"
    keys = data / "keys"
    generate_device(keys)
    cr = tmp_path / "cr"
    generate_control_room(cr)
    shutil.copy(cr / "control-room.ed25519.pub", keys / "control-room.ed25519.pub")
    config = load_config(overrides={"device.data_dir": str(data), "device.id": "van-01",
                                    "deployment.wipe_watchlist_on_end": True})
    spec = load_manifest(config.models.dir).get(MODEL, "embedder")
    threshold = resolve_threshold(config.matcher, spec)
    watchlist = open_store(config)
    dx = X25519PrivateKey.generate()
    entries = [Entry({"id": f"S-{i}", "display_name": f"Person {i}", "category": "wanted", "legal_basis": "b",
                      "image_source": "c", "expires_at": iso(utcnow() + timedelta(days=30))},
                     template(i)[None, :], b"\xff\xd8\xff" + bytes([i]) * 50) for i in range(4)]
    sk = load_signing_key(cr / "control-room.ed25519.key")
    built = build_bundle(entries, tmp_path / "wl.lfrwl", watchlist_id="met-wanted", model_id=MODEL, signing_key=sk,
                         recipients=[("van-01", dx.public_key())], version=2)
    watchlist.apply(open_bundle(built.path, sk.public_key(), "van-01", dx), model_id=MODEL)
    events = EventStore.open(data, key_provider_from_config(config))
    matcher = MatchService.for_embedder(config.matcher, spec, watchlist.load_gallery(), config.models.dir)
    resets = []
    counters = {"faces_seen": 0}
    sg = build_safeguards(config, events=events, watchlist=watchlist, matcher=matcher, embedder_spec=spec,
                          threshold=lambda: threshold, counters=lambda: dict(counters),
                          reset_tracks=lambda: resets.append(1), with_mqtt=False)
    yield sg, matcher, watchlist, events, resets, counters, sk, spec
    sg.stop()
    events.close()
    watchlist.close()


class Now:
    def __call__(self):
        return utcnow()


def test_gate_record_and_wipe_on_end(van):
    sg, matcher, watchlist, events, resets, counters, _sk, spec = van
    assert not sg.deployments.is_active()
    rec = sg.deployments.start(request(Now()), source="console")
    assert sg.deployments.is_active()
    meta = watchlist.meta()
    assert rec["watchlist"] == {"id": "met-wanted", "version": 2, "sha256": meta["watchlist_sha256"], "subjects": 4}
    assert rec["model"] == {"id": MODEL, "sha256": spec.sha256}
    assert rec["expected_false_alert_rate"] is not None and 0 < rec["expected_false_alert_rate"] < 1e-3
    counters["faces_seen"] = 12
    sg.check()
    assert json.loads(events.db.conn.execute("SELECT counts FROM deployments").fetchone()[0]) == {"faces_seen": 12}
    sg.deployments.end("officer", by="PC-1")
    # deployment.wipe_watchlist_on_end: the matcher, the tracks and the database are emptied.
    assert not sg.deployments.is_active() and matcher.gallery.n_subjects == 0 and resets
    assert watchlist.meta() is None and watchlist.counts() == (0, 0)
    assert sg.audit.verify().ok
    kinds = [r[0] for r in events.db.conn.execute("SELECT kind FROM audit ORDER BY seq")]
    assert kinds == ["deployment.started", "deployment.ended", "watchlist.erased"]


def test_signed_revoke_through_the_handler(van):
    sg, matcher, watchlist, *_, sk, _spec = van
    sg.deployments.start(request(Now()), source="console")
    ack = sg.commands.handle(json.dumps(sign_command(sk, build_command("revoke_watchlist", "van-01",
                                                                       {"watchlist_id": "met-wanted"}))))
    assert ack["status"] == "done", ack
    assert matcher.gallery.n_subjects == 0 and watchlist.counts() == (0, 0) and not sg.deployments.is_active()
    assert sg.audit.verify().ok
