"""The no-trace search finds images and embeddings however they were written, and nothing in noise."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from appliance.devtools.trace_search import find_traces, quantise_int8

RNG = np.random.default_rng(7)


def unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


EMB = np.stack([unit(RNG.standard_normal(128)) for _ in range(3)])


def kinds(findings):
    return {f.kind for f in findings}


@pytest.fixture
def noise_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "random.bin").write_bytes(RNG.integers(0, 256, 60_000, dtype=np.uint8).tobytes())
    (d / "other_faces.f32").write_bytes(np.stack([unit(RNG.standard_normal(128)) for _ in range(50)]).tobytes())
    log = "\n".join(f"INFO frame {i}: 3 faces, 0 matched, fps 29.97, score 0.41 0.38 0.22" for i in range(600))
    (d / "appliance.log").write_text(log)
    return d


def test_nothing_in_noise(noise_dir):
    # Random bytes, other people's embeddings, and logs with numbers: no finding.
    assert find_traces([noise_dir], EMB) == []


@pytest.mark.parametrize("encode, kind", [
    (lambda e: e.astype("<f4").tobytes(), "float32_exact"),
    (lambda e: e.astype(">f4").tobytes(), "float32_exact"),
    (lambda e: e.astype("<f8").tobytes(), "float64_exact"),
    (lambda e: quantise_int8(e).tobytes(), "int8_exact"),
    (lambda e: (e + np.random.default_rng(1).normal(0, 0.02, 128)).astype("<f4").tobytes(), "near_float32"),
    (lambda e: np.clip(np.round(e / 0.01) + 3, -128, 127).astype(np.int8).tobytes(), "near_int8"),
    (lambda e: np.clip(np.round(e / 0.008) + 128, 0, 255).astype(np.uint8).tobytes(), "near_uint8"),
])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_embedding_hidden_in_noise_is_found(noise_dir, encode, kind, offset):
    blob = RNG.integers(0, 256, 5000 + offset, dtype=np.uint8).tobytes() + encode(EMB[1]) + b"\x00" * 10
    (noise_dir / "leak.bin").write_bytes(blob)
    found = [f for f in find_traces([noise_dir], EMB) if f.kind == kind]
    assert found and all(f.embedding == 1 for f in found), find_traces([noise_dir], EMB)
    assert found[0].source.endswith("leak.bin")


def test_embedding_as_text_in_a_log(noise_dir):
    line = "DEBUG embedding=" + json.dumps([round(float(x), 4) for x in EMB[2]])
    (noise_dir / "appliance.log").write_text((noise_dir / "appliance.log").read_text() + "\n" + line + "\n")
    found = [f for f in find_traces([noise_dir], EMB) if f.kind == "near_text"]
    assert found and found[0].embedding == 2 and found[0].score > 0.99


def test_base64_in_an_mqtt_payload():
    payload = json.dumps({"schema": "x", "vec": base64.b64encode(EMB[0].tobytes()).decode()}).encode()
    found = find_traces([], EMB, blobs=[("mqtt:alerts#1", payload)])
    assert {(f.kind, f.encoding) for f in found} >= {("float32_exact", "base64")}


def test_images_raw_and_base64(tmp_path):
    img = RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    (tmp_path / "crop.jpg").write_bytes(jpeg)
    (tmp_path / "x.png").write_bytes(png)
    msg = json.dumps({"crop_jpeg_b64": base64.b64encode(jpeg).decode()}).encode()
    found = find_traces([tmp_path], EMB, jpeg_crops=[jpeg], blobs=[("mqtt", msg)])
    by = {(f.source.split("/")[-1], f.kind, f.encoding) for f in found}
    assert ("crop.jpg", "jpeg", "raw") in by and ("crop.jpg", "crop", "raw") in by
    assert ("x.png", "png", "raw") in by
    assert ("mqtt", "jpeg", "base64") in by and ("mqtt", "crop", "base64") in by


def test_sqlcipher_needs_decrypting(tmp_path):
    from appliance.devtools.trace_search import database_blobs
    from appliance.events.models import Alert
    from appliance.events.store import EventStore
    from appliance.storage import KeyFileProvider

    kp = KeyFileProvider(tmp_path / "keys")
    store = EventStore.open(tmp_path, kp)
    jpeg = cv2.imencode(".jpg", RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8))[1].tobytes()
    store.add_alert(Alert(device_id="van-01", subject_id="S", category="c", score=0.7, threshold=0.6, track_id=1,
                          model_id="m", watchlist_id="w", watchlist_version=1, crop_jpeg=jpeg))
    store.close()
    # The ciphertext hides the crop from a byte search ...
    assert "crop" not in kinds(find_traces([tmp_path / "events.db"], EMB, jpeg_crops=[jpeg]))
    # ... so the proof decrypts every cell and searches those.
    found = find_traces([], EMB, jpeg_crops=[jpeg], blobs=database_blobs(tmp_path, kp))
    assert any(f.kind == "crop" and f.source == "events.db:alerts.crop_jpeg" for f in found)


def test_three_bytes_are_not_a_jpeg(tmp_path):
    # FF D8 FF turns up by chance in ciphertext about once per 16 MiB: only a well-formed start counts.
    (tmp_path / "cipher.bin").write_bytes(RNG.integers(0, 256, 1000, dtype=np.uint8).tobytes() + b"\xff\xd8\xff\x13"
                                          + RNG.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    assert find_traces([tmp_path], EMB) == []
