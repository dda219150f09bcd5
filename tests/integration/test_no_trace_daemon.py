"""The no-trace proof on the running daemon (issue 5, item 8): `Appliance` with its MQTT parts on a real TLS
Mosquitto, a replayed street with many faces that are not on the watchlist and two that are.

During a deployment, then again outside one, every byte the system wrote is searched for the non-matched
faces: the data directory, the daemon's log (what journald would hold), every cell of the decrypted
databases, and every MQTT message a control-room subscriber recorded. Looked for: image signatures, the
exact crops, and the float32/float64/int8 embeddings recomputed by this test, exact and near.
Expected: the matched alerts' crops (database and alert messages) and the watchlist's reference photos.

Skips until the daemon is wired with the safeguards (appliance.daemon.assembly.build_safeguards).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import time
from datetime import timedelta

import cv2
import numpy as np
import pytest
from accountability_helpers import Clock, request

from appliance.alerts.evidence import face_crop_jpeg
from appliance.config import load_config
from appliance.devtools.street_clip import plan_walkers, render
from appliance.devtools.trace_search import database_blobs, find_traces
from appliance.keys.keypairs import generate_control_room, generate_device, load_signing_key
from appliance.matching import Gallery, MatchService
from appliance.storage import KeyFileProvider
from appliance.sync.mqtt import MqttConnection
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.records import Entry
from appliance.watchlist.timeutil import iso, utcnow

WATCHLIST = ["Alan_Ball", "Albrecht_Mentz"]
PASSERS_BY = ["Abdullah", "Adam_Sandler", "Alex_Penelas", "Aaron_Sorkin", "Abdullah_Gul", "Adrien_Brody"]
MODEL = "mobilefacenet-int8"
FPS = 8


def _daemon_is_wired() -> bool:
    from appliance.daemon.service import Appliance

    return "safeguards" in inspect.getsource(Appliance)


pytestmark = pytest.mark.skipif(not _daemon_is_wired(), reason="the daemon is not wired with the safeguards yet "
                                "(appliance/deployments/device.py: build_safeguards)")


@pytest.fixture(scope="module")
def street(tmp_path_factory, lfw_dir, crowd_dir, pipeline):
    """The clip as PNG files (the 'camera'), the watchlist entries, and the non-matched faces recomputed."""
    root = tmp_path_factory.mktemp("street")
    frames_dir = root / "camera"
    frames_dir.mkdir()
    def photo(name, k):
        return sorted((lfw_dir / name).glob("*.jpg"))[k]

    photos = [photo(n, 0) for n in PASSERS_BY]
    photos[2:2] = [photo(WATCHLIST[0], 1)]  # the watchlist people walk past in another photo than enrolled
    photos += [photo(WATCHLIST[1], 1)]
    images = render(cv2.imread(str(crowd_dir / "13.jpg")), plan_walkers(photos, fps=FPS), (960, 540))
    for i, im in enumerate(images):
        cv2.imwrite(str(frames_dir / f"{i:04d}.png"), im)  # lossless: the daemon decodes the same pixels
    entries, rows = [], []
    distractors = sorted(n for n in os.listdir(lfw_dir) if n not in WATCHLIST + PASSERS_BY)[:20]
    for i, name in enumerate(WATCHLIST + distractors):
        path = sorted((lfw_dir / name).glob("*.jpg"))[0]
        r = pipeline.enrol(cv2.imread(str(path)))
        if not r.ok:
            continue
        rows.append(r.embedding)
        meta = {"id": f"W-{i:03d}", "display_name": name.replace("_", " "), "category": "wanted",
                "legal_basis": "test", "image_source": "LFW", "expires_at": iso(utcnow() + timedelta(days=30))}
        entries.append(Entry(meta, r.embedding[None, :].astype(np.float32), path.read_bytes()))
    # The van's own matcher (its calibrated threshold, on its score scale) decides which faces did not match.
    matcher = MatchService.for_embedder(load_config().matcher, pipeline.embedder_spec,
                                        Gallery([e.id for e in entries], np.stack(rows)))
    floats, crops = [], set()
    for im in images:
        for face in pipeline.process(im):
            if face.embedding is not None and matcher.identify(face.embedding) is None:
                floats.append(face.embedding.copy())
                crops.add(face_crop_jpeg(im, face.detection.box))
    assert len(floats) >= 30, len(floats)
    return frames_dir, entries, np.stack(floats), crops, len(images)


class Recorder:
    """The control room's view of the van: every MQTT message under lfr/v1/devices/van-01/."""

    def __init__(self, broker):
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.conn = MqttConnection(broker.settings("control-room", client_id="control-room-recorder"),
                                   on_message=self._on, clean_start=True).connect()
        for t in ("status", "alerts", "decisions", "deployments", "watchlist/ack", "commands/ack"):
            self.conn.subscribe(f"lfr/v1/devices/van-01/{t}")

    def _on(self, m) -> None:
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload)))

    def blobs(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(f"mqtt:{t}#{i}", p) for i, (t, p) in enumerate(self.messages)]

    def close(self) -> None:
        self.conn.close()


def run_daemon(tmp_path, broker, street, *, deployment: bool):
    from appliance.daemon.assembly import open_store
    from appliance.daemon.service import Appliance
    from appliance.deployments.manager import DeploymentManager
    from appliance.deployments.record import MatchingContext
    from appliance.events.store import EventStore

    frames_dir, entries, _, _, n_frames = street
    data = tmp_path / "data"
    keys = data / "keys"
    generate_device(keys)
    cr = tmp_path / "cr"
    generate_control_room(cr)
    (keys / "control-room.ed25519.pub").write_bytes((cr / "control-room.ed25519.pub").read_bytes())
    sk = load_signing_key(cr / "control-room.ed25519.key")
    mqtt = broker.mqtt_config("van-01")
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[device]\nid = "van-01"\ndata_dir = "{data}"\n[storage]\nkey_provider = "file"\n'
        f'[capture]\nsource = "{frames_dir}"\nfps = {FPS}.0\nwidth = 960\nheight = 540\n'
        "[mqtt]\n" + "".join(f'{k} = "{v}"\n' for k, v in mqtt.items()))
    config = load_config(cfg)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    dx = X25519PrivateKey.generate()
    built = build_bundle(entries, tmp_path / "wl.lfrwl", watchlist_id="met-wanted", model_id=MODEL, signing_key=sk,
                         recipients=[("van-01", dx.public_key())], version=1)
    store = open_store(config)
    store.apply(open_bundle(built.path, sk.public_key(), "van-01", dx), model_id=MODEL)
    if deployment:  # authorised before the daemon starts: it adopts it at start-up
        meta = store.meta()
        events = EventStore.open(data, KeyFileProvider(keys))
        ctx = MatchingContext(meta["watchlist_id"], meta["version"], meta["watchlist_sha256"], len(entries),
                              0.6142, MODEL, "ab" * 32)
        DeploymentManager(events, "van-01", context=lambda: ctx, config=config.deployment).start(
            request(Clock()), source="cli")
        events.close()
    store.close()

    log_file = tmp_path / "daemon.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    recorder = Recorder(broker)
    app = Appliance(config, cfg, with_mqtt=True, with_console=False)
    try:
        app.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and app.camera.state.value not in ("ended", "stopped"):
            time.sleep(0.2)
        time.sleep(1.0)  # the last frame through the hot path
        assert app.events.wait_sent(30), "the outbox did not drain"
        counters = app.counters.snapshot()
        alerts = app.events.alerts(limit=100)
        assert app.safeguards.audit.verify().ok
    finally:
        app.stop()
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
        time.sleep(0.5)
        recorder.close()
    assert counters.get("frames", 0) >= n_frames // 2, counters
    return data, log_file, recorder.blobs(), counters, alerts


def search(data, log_file, mqtt_blobs, street):
    _, _, floats, crops, _ = street
    blobs = database_blobs(data, KeyFileProvider(data / "keys")) + mqtt_blobs
    exact = find_traces([data, log_file], floats, jpeg_crops=crops, blobs=blobs, near=None)
    near = find_traces([data, log_file], floats[::4], blobs=blobs)
    return exact + [f for f in near if f.kind.startswith("near_")]


def test_no_trace_during_a_deployment(tmp_path, tls_broker, street):
    data, log_file, mqtt, counters, alerts = run_daemon(tmp_path, tls_broker, street, deployment=True)
    assert counters.get("looks_embedded", 0) > 0 and len(alerts) >= 1, counters
    assert {a["subject_id"] for a in alerts} <= {"W-000", "W-001"}
    assert all(a["deployment_id"] for a in alerts)
    for a in alerts:  # when the crop's frame was taken and since when the person was in view: times only
        assert a["first_seen_at"] <= a["captured_at"] <= a["created_at"] and a["looks"] >= 1, a
    wire = [json.loads(p) for n, p in mqtt if n.split("#")[0] == "mqtt:lfr/v1/devices/van-01/alerts"]
    assert {p["schema"] for p in wire} == {"lfr.alert/2"}, wire
    assert {(p["event_id"], p["captured_at"], p["first_seen_at"], p["looks"]) for p in wire} == {
        (a["event_id"], a["captured_at"], a["first_seen_at"], a["looks"]) for a in alerts}
    findings = search(data, log_file, mqtt, street)
    alert_msgs = {name for name, _ in mqtt if name.split("#")[0] == "mqtt:lfr/v1/devices/van-01/alerts"}
    expected_sources = {"events.db:alerts.crop_jpeg", *alert_msgs}
    photo_cols = {f.source for f in findings if f.source.startswith("watchlist.db:") and f.kind == "jpeg"}
    unexpected = [f for f in findings
                  if not (f.kind == "jpeg" and (f.source in expected_sources or f.source in photo_cols))]
    assert not unexpected, "\n".join(str(f) for f in unexpected[:20])
    assert sum(f.source == "events.db:alerts.crop_jpeg" for f in findings) == len(alerts)
    assert sum(f.source in alert_msgs for f in findings) == len(alerts)
    deployment_events = [json.loads(p)["event"] for n, p in mqtt if "/deployments#" in n]
    assert deployment_events[:1] == ["started"], deployment_events


def test_nothing_embedded_outside_a_deployment(tmp_path, tls_broker, street):
    data, log_file, mqtt, counters, alerts = run_daemon(tmp_path, tls_broker, street, deployment=False)
    assert counters.get("looks_embedded", 0) == 0 and alerts == [] and counters.get("faces_seen", 0) > 5
    findings = search(data, log_file, mqtt, street)
    unexpected = [f for f in findings if not (f.kind == "jpeg" and f.source.startswith("watchlist.db:"))]
    assert not unexpected, "\n".join(str(f) for f in unexpected[:20])
