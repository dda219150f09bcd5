"""The no-trace proof at the level of the parts (the lead's daemon-level test runs the same search over the
running daemon): the real models over a street clip during a deployment, alerts stored and queued exactly as
the daemon does, then every byte written is searched for the faces that did not match.

Searched: every file in the data directory and the log file, every cell of the decrypted databases, and the
outbox payloads exactly as the publisher sends them on MQTT (crops filled in). Looked for: image signatures,
the crops of the non-matched faces, their float32/float64/int8 embeddings (exact), and near copies of them.
Expected: only the matched alerts' crops (in alerts.crop_jpeg and in the alert payloads)."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
from accountability_helpers import CTX, Clock, manager, open_events, request
from lfw_gallery import lfw_match_service

from appliance.alerts.evidence import face_crop_jpeg
from appliance.alerts.rule import AlertRule
from appliance.capture.base import Frame
from appliance.config import load_config
from appliance.daemon.frames import Counters, FrameProcessor
from appliance.devtools.street_clip import plan_walkers, render
from appliance.devtools.trace_search import database_blobs, find_traces
from appliance.events.models import Alert, epoch_iso
from appliance.storage import KeyFileProvider
from appliance.vision.tracker import FaceTracker

WATCHLIST = ["Alan_Ball", "Albrecht_Mentz"]
PASSERS_BY = ["Abdullah", "Adam_Sandler", "Alex_Penelas", "Aaron_Sorkin"]


@pytest.fixture(scope="module")
def clip(lfw_dir, crowd_dir, pipeline):
    config = load_config()
    service = lfw_match_service(pipeline, config, lfw_dir, WATCHLIST, exclude=PASSERS_BY)
    photos = [lfw_dir / n / f"{n}_0001.jpg" for n in PASSERS_BY]
    photos[1:1] = [lfw_dir / WATCHLIST[0] / f"{WATCHLIST[0]}_0002.jpg"]
    photos += [lfw_dir / WATCHLIST[1] / f"{WATCHLIST[1]}_0002.jpg"]
    images = render(cv2.imread(str(crowd_dir / "13.jpg")), plan_walkers(photos, fps=8), (960, 540))
    frames = [Frame(image=im, seq=i, timestamp=i / 8, monotonic=i / 8, source="clip") for i, im in enumerate(images)]
    return config, service, frames


def test_non_matched_faces_leave_no_trace(clip, pipeline, tmp_path):
    config, service, frames = clip
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    handler = logging.FileHandler(logs / "appliance.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        events, audit = open_events(data)
        counters = Counters()
        deployments = manager(events, audit, Clock(), counters=counters.snapshot)

        def on_alert(ev):  # what the daemon's _on_alert does
            m = ev.match
            events.add_alert(Alert(device_id="van-01", subject_id=m.subject_id, category="wanted", score=m.score,
                                   threshold=m.threshold, track_id=ev.candidate.track_id, model_id=pipeline.model_id,
                                   watchlist_id=CTX.watchlist_id, watchlist_version=CTX.watchlist_version,
                                   looks=ev.candidate.looks, crop_jpeg=ev.crop_jpeg,
                                   captured_at=epoch_iso(ev.frame_time), first_seen_at=epoch_iso(ev.first_seen),
                                   deployment_id=deployments.active_id()))

        proc = FrameProcessor(pipeline, FaceTracker(config.tracker), service, AlertRule(config.alerts), on_alert,
                              matching_enabled=deployments.is_active, counters=counters)
        # Before the deployment: the camera runs for the preview, nothing is embedded.
        for f in frames[:8]:
            proc.process(f)
        assert counters.snapshot().get("looks_embedded", 0) == 0 and counters.snapshot()["faces_seen"] > 0
        deployments.start(request(Clock()), source="console")
        for f in frames[8:]:
            proc.process(f)
        proc.reset()
        deployments.end("officer", by="PC-1")
        mqtt = [(f"mqtt:{r['topic']}#{r['id']}", json.dumps(r["payload"]).encode())
                for r in events.outbox_unsent(limit=10_000)]
        alert_ids = [r[0] for r in events.db.conn.execute("SELECT event_id FROM alerts")]
        assert audit.verify().ok
        events.close()
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
    assert len(alert_ids) >= 1, "the watchlist faces should have alerted"
    assert (logs / "appliance.log").stat().st_size > 0

    # The test recomputes every face in every frame of the deployment and keeps those that do not match.
    floats, crops = [], []
    for f in frames[8:]:
        for face in pipeline.process(f.image):
            if face.embedding is not None and service.identify(face.embedding) is None:
                floats.append(face.embedding.copy())
                crops.append(face_crop_jpeg(f.image, face.detection.box))
    assert len(floats) >= 30, f"the clip should show many non-matched faces, got {len(floats)}"
    floats = np.stack(floats)

    blobs = database_blobs(data, KeyFileProvider(data / "keys")) + mqtt
    exact = find_traces([data, logs], floats, jpeg_crops=set(crops), blobs=blobs, near=None)
    near = find_traces([data, logs], floats[::4], blobs=blobs)
    findings = exact + [f for f in near if f.kind.startswith("near_")]
    alert_payloads = {name for name, payload in mqtt if name.startswith("mqtt:alerts#")}
    expected = [f for f in findings if f.kind == "jpeg" and
                (f.source == "events.db:alerts.crop_jpeg" or f.source in alert_payloads)]
    unexpected = [f for f in findings if f not in expected]
    assert not unexpected, "\n".join(str(f) for f in unexpected[:20])
    # ...and it does find the material that must be there: one crop per alert, in the database and on MQTT.
    assert sum(f.source == "events.db:alerts.crop_jpeg" for f in expected) == len(alert_ids)
    assert sum(f.source in alert_payloads for f in expected) == len(alert_ids)
