"""ONNX Runtime as the second runtime, on the real MobileFaceNet ONNX model (the float graph the TFLite files
were converted from): selected by the manifest, NCHW input, and the same embeddings and accuracy as the fp32
TFLite model under LiteRT."""

from __future__ import annotations

import shutil
import time

import cv2
import numpy as np
import pytest

from appliance.config import load_config
from appliance.errors import ModelError
from appliance.paths import models_dir, shared_dir
from appliance.runtime.loader import load_model, runtime_version
from appliance.runtime.manifest import load_manifest
from appliance.vision.embedder import FaceEmbedder
from appliance.vision.pipeline import FacePipeline

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

ONNX_ID = "mobilefacenet-onnx"
FP32_ID = "mobilefacenet-fp32"
# Per face, cosine(ONNX, fp32 TFLite) must be at least this. Both run the same float32 graph; only the order of
# float operations differs, which moves an L2-normalised 128-d vector by ~1e-7 (measured: min 0.9999999 over
# 188 faces). A wrong layout, colour order or normalisation drops it far below 0.99; int8 quantisation, the
# smallest real change of model, gives 0.982-0.998 (median 0.994), so this bound tells "the same model" apart
# from "a slightly different model" with two orders of magnitude to spare on either side.
SAME_MODEL_COSINE = 0.9999


def _embedder(model_id: str, flip: bool = False) -> FaceEmbedder:
    spec = load_manifest().get(model_id, "embedder")
    try:
        model = load_model(spec)
    except ModelError as e:
        pytest.fail(f"{e}; run `make models`")
    return FaceEmbedder(model, spec.input["mean"], spec.input["std"], flip=flip, layout=spec.layout)


@pytest.fixture(scope="module")
def aligned_faces() -> np.ndarray:
    """188 aligned 112x112 RGB faces from non-LFW photos (the int8 calibration set)."""
    path = shared_dir() / "models" / "embedder" / "calibration_faces_rgb112.npy"
    if not path.is_file():
        pytest.skip(f"{path} not found: set APPLIANCE_SHARED to the folder holding data/ and models/")
    return np.load(path)


def test_the_manifest_selects_onnxruntime_with_an_nchw_input():
    spec = load_manifest().get(ONNX_ID, "embedder")
    assert spec.runtime == "onnxruntime" and spec.layout == "NCHW"
    model = load_model(spec)
    assert model.backend == "onnxruntime" and model.version == ort.__version__
    assert model.inputs[0].shape == (1, 3, 112, 112) and model.outputs[0].shape == (1, 128)
    assert runtime_version("onnxruntime") == f"onnxruntime {ort.__version__}"
    assert runtime_version(load_manifest().get(FP32_ID).runtime).startswith(("ai-edge-litert ", "tflite-runtime "))


def test_a_manifest_shape_that_is_not_the_files_is_refused(tmp_path):
    """A force that writes NHWC for an NCHW model is told so at load time, not given wrong embeddings."""
    spec = load_manifest().get(ONNX_ID)
    root = tmp_path / "models"
    (root / "embedder").mkdir(parents=True)
    shutil.copyfile(spec.path(), root / spec.file)
    text = (models_dir() / "manifest.toml").read_text()
    start = text.index(f"[models.{ONNX_ID}.input]")
    section = text[start:].replace("    3,\n    112,\n    112,\n]", "    112,\n    112,\n    3,\n]", 1)
    (root / "manifest.toml").write_text(text[:start] + section)
    with pytest.raises(ModelError, match=r"input shape \[1, 112, 112, 3\] is not the file's \[1, 3, 112, 112\]"):
        load_model(load_manifest(root).get(ONNX_ID), root)


def test_onnx_and_fp32_tflite_give_the_same_embedding_per_face(aligned_faces):
    onnx, fp32, int8 = _embedder(ONNX_ID), _embedder(FP32_ID), _embedder("mobilefacenet-int8")
    cos = np.array([float(onnx.embed(f) @ fp32.embed(f)) for f in aligned_faces])
    assert cos.min() >= SAME_MODEL_COSINE, f"worst face {int(cos.argmin())}: cosine {cos.min():.7f}"
    # The bound is tight enough to see a real model change: int8 against fp32 falls below it on every face.
    cos_int8 = np.array([float(int8.embed(f) @ fp32.embed(f)) for f in aligned_faces[:20]])
    assert cos_int8.max() < SAME_MODEL_COSINE
    # And the layout matters: the same pixels fed as NHWC-ordered bytes into the NCHW model are another face.
    scrambled = np.ascontiguousarray(aligned_faces[0].reshape(3, 112, 112).transpose(1, 2, 0))
    assert float(onnx.embed(scrambled) @ fp32.embed(aligned_faces[0])) < 0.9


def _pairs(lfw_dir, folds: int = 3, per_kind: int = 50) -> list[tuple[str, str, bool]]:
    """The first `per_kind` same and `per_kind` different pairs of each of the first `folds` folds."""
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()[1:]
    out = []
    for fold in range(folds):
        block = lines[fold * 600 : (fold + 1) * 600]
        for line in block[:per_kind] + block[300 : 300 + per_kind]:
            p = line.split()
            if len(p) == 3:
                out.append((f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg", f"{p[0]}/{p[0]}_{int(p[2]):04d}.jpg", True))
            else:
                out.append((f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg", f"{p[2]}/{p[2]}_{int(p[3]):04d}.jpg", False))
    return out


def test_onnx_gives_the_same_lfw_accuracy_as_fp32_tflite(lfw_dir):
    """300 LFW pairs (3 folds x 50 same + 50 different), each image detected and aligned once, then embedded by
    the ONNX pipeline (chosen by `models.embedder`, as a van would) and by the fp32 TFLite embedder."""
    t0 = time.monotonic()
    pipe = FacePipeline.from_config(load_config(overrides={"models.embedder": ONNX_ID}))
    assert pipe.embedder.model.backend == "onnxruntime" and pipe.model_id == ONNX_ID
    fp32 = _embedder(FP32_ID, flip=pipe.embedder.flip)
    pairs = _pairs(lfw_dir)
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for a, b, _ in pairs:
        for name in (a, b):
            if name not in cache:
                image = cv2.imread(str(lfw_dir / name))
                face = pipe.embed(image, pipe.detect(image, portrait=True)[0])
                cache[name] = (face.embedding, fp32.embed(face.aligned.image))
    same = np.array([s for _, _, s in pairs])
    scores = {k: np.array([float(cache[a][k] @ cache[b][k]) for a, b, _ in pairs]) for k in (0, 1)}
    # Same model, so the same scores: no pair's score moves by more than 1e-4 ...
    assert np.abs(scores[0] - scores[1]).max() < 1e-4
    # ... and the same accuracy, at each model's own best threshold and at the fp32 model's calibrated one.
    def best_accuracy(s: np.ndarray) -> float:
        return max(float(np.mean((s >= t) == same)) for t in s)

    acc = [best_accuracy(scores[k]) for k in (0, 1)]
    assert acc[0] == pytest.approx(acc[1], abs=1 / len(pairs)), acc
    assert acc[0] >= 0.97  # MobileFaceNet is 99.3% on all 4,200 pairs; 300 pairs leave room for noise
    threshold = load_manifest().get(FP32_ID).calibration.threshold
    assert np.array_equal(scores[0] >= threshold, scores[1] >= threshold)
    assert time.monotonic() - t0 < 300, "bounded: a few hundred pairs, not the full evaluation"


def test_selftest_names_each_models_runtime_and_version():
    from appliance.device.selftest import check_interpreter

    message, detail = check_interpreter(load_config(overrides={"models.embedder": ONNX_ID}))
    assert detail["runtimes"][ONNX_ID] == f"onnxruntime {ort.__version__}"
    assert detail["runtimes"]["blazeface-full"].startswith(("ai-edge-litert ", "tflite-runtime "))
    assert f"onnxruntime {ort.__version__}" in message and np.isfinite(detail["ms"][ONNX_ID])


def test_a_new_model_is_calibrated_by_eval_calibrate_and_nothing_else_moves(tmp_path, lfw_dir):
    """A force's first calibration of its own model: `eval --calibrate` on a model without a calibration writes
    its table, and only its table (a small LFW subset stands in for the force's data)."""
    import json
    import subprocess
    import sys

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    data = tmp_path / "data"
    people = sorted(d for d in lfw_dir.iterdir() if d.is_dir())
    repeated = [d for d in people if len(list(d.glob("*.jpg"))) >= 2][:25]
    single = [d for d in people if len(list(d.glob("*.jpg"))) == 1][:25]
    for d in repeated + single:
        (data / d.name).mkdir(parents=True)
        for photo in sorted(d.glob("*.jpg"))[:2]:
            shutil.copyfile(photo, data / d.name / photo.name)
    models = tmp_path / "models"
    shutil.copytree(models_dir(), models, ignore=shutil.ignore_patterns("*.tflite"))
    text = (models / "manifest.toml").read_text()
    start = text.index(f"[models.{ONNX_ID}.calibration]")
    (models / "manifest.toml").write_text(text[:start])  # the ONNX entry is last: as a force adds it, uncalibrated
    for spec in load_manifest().models.values():
        if spec.file.endswith(".tflite"):
            (models / spec.file).symlink_to(spec.path())
    before = tomllib.loads((models / "manifest.toml").read_text())
    assert "calibration" not in before["models"][ONNX_ID]
    config = tmp_path / "appliance.toml"
    config.write_text(f'[models]\ndir = "{models}"\nembedder = "{ONNX_ID}"\n')
    r = subprocess.run([sys.executable, "-m", "appliance", "eval", "--data", str(data), "--config", str(config),
                        "--calibrate", "--json", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    after = tomllib.loads((models / "manifest.toml").read_text())
    cal = after["models"][ONNX_ID].pop("calibration")
    assert cal["threshold"] == result["calibration"]["threshold"] == result["threshold"]
    assert cal["floor"] <= cal["threshold"] and cal["evidence"]["images"] == len(list(data.glob("*/*.jpg")))
    assert after == before  # every other entry, and the ONNX entry's own fields, as they were
    assert load_manifest(models).get(ONNX_ID).calibration is not None  # and the manifest still loads
