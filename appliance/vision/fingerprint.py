"""What a calibrated threshold was measured with: the pipeline's fingerprint.

A threshold is a point on a score distribution, and every library that touches pixels or numbers moves that
distribution a little: JPEG decoding and resizing (OpenCV), the similarity warp (OpenCV), the arithmetic
(numpy), the kernels (the interpreter and XNNPACK), the model files, and the settings that choose and
prepare a face. `appliance eval --calibrate` writes this fingerprint into the manifest's evidence; the
self-test and the daemon's start compare it with what is running and say plainly what differs.

`python` and `machine` are recorded but not compared: every Pi differs from the x86 build machine there,
and the arm64 check (docs/install.md) measures whether that moves the scores.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import cv2
import numpy as np

from appliance.config import Config
from appliance.runtime.manifest import ONNXRUNTIME, ModelSpec, load_manifest, sha256_of
from appliance.vision.align import ARCFACE_TEMPLATE

INFORMATIONAL = ("python", "machine")  # recorded, never a reason to warn


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def interpreter_version(specs: list[ModelSpec] | None = None) -> str:
    """The runtimes that run these models, as 'name version' (LiteRT as runtime/interpreter.py loads it,
    and ONNX Runtime when a manifest entry names it)."""
    litert = next((f"{n} {v}" for n in ("ai-edge-litert", "tflite-runtime") if (v := _dist_version(n))), "none")
    if any(s.runtime == ONNXRUNTIME for s in specs or []):
        return f"{litert}, onnxruntime {_dist_version('onnxruntime') or 'none'}"
    return litert


def _model(spec: ModelSpec | None) -> str:
    return f"{spec.id} sha256:{spec.sha256}" if spec is not None else "none"


def pipeline_fingerprint(config: Config) -> dict[str, Any]:
    """The fingerprint of the pipeline this configuration builds (flat, TOML-friendly, strings only)."""
    manifest = load_manifest(config.models.dir)
    embedder = manifest.get(config.models.embedder, "embedder")
    landmarks = manifest.get(config.models.landmarks, "landmarks") if config.models.landmarks else None
    detector = manifest.get(config.models.detector, "detector")
    d, q = config.detector, config.quality
    inp = embedder.input
    fingerprint = {
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "interpreter": interpreter_version([s for s in (detector, landmarks, embedder) if s is not None]),
        "xnnpack": str(config.runtime.xnnpack).lower(),
        "detector": _model(detector),
        "landmarks": _model(landmarks),
        "embedder": _model(embedder),
        "alignment": ("5 points from the face mesh" if landmarks else "4 detector keypoints")
        + ", similarity (LMEDS) onto the 112x112 template "
        + ",".join(f"{v:g}" for v in ARCFACE_TEMPLATE.ravel()),
        "preprocessing": f"{inp.get('colour', 'RGB')} {inp.get('dtype')} mean {inp.get('mean')} std {inp.get('std')}"
        f"{', mirror-averaged' if config.models.embed_flip else ''}",
        "detection": f"score {d.score_threshold} nms {d.nms_iou} max {d.max_faces}",
        "quality_gate": f"eyes {q.min_interocular_px}px sharpness {q.min_sharpness} yaw {q.max_yaw_deg} "
        f"pitch {q.max_pitch_deg} score {q.min_score}",
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if norm := embedder.normalisation:  # the threshold is on the normalised scale: its background set counts too
        path = manifest.path.parent / norm["background"]
        fingerprint["scores"] = (f"{norm['method']} top-{norm['k']} background "
                                 f"sha256:{sha256_of(path) if path.is_file() else 'missing'}")
    return fingerprint


def pipeline_differences(calibrated: dict[str, Any] | None, running: dict[str, Any]) -> list[str]:
    """One line per difference that can move the scores, e.g. "opencv 4.12.0 (calibrated with 4.11.0)".

    An evidence without a fingerprint (a calibration older than this check) is one difference of its own.
    """
    if not calibrated:
        return ["the calibration does not record its pipeline (re-run `appliance eval --calibrate`)"]
    out = []
    for key, value in running.items():
        if key in INFORMATIONAL:
            continue
        was = calibrated.get(key)
        if str(was) != str(value):
            out.append(f"{key} {value} (calibrated with {was if was is not None else 'an unrecorded value'})")
    return out


def calibrated_fingerprint(embedder_spec: ModelSpec) -> dict[str, Any] | None:
    cal = embedder_spec.calibration
    evidence = cal.evidence if cal is not None and isinstance(cal.evidence, dict) else {}
    return evidence.get("pipeline")


def pipeline_warning(config: Config, embedder_spec: ModelSpec) -> list[str]:
    """The differences between the running pipeline and the one the embedder's threshold was calibrated on."""
    if embedder_spec.calibration is None:
        return []  # no calibrated threshold: matcher.threshold is set by hand, and says so itself
    return pipeline_differences(calibrated_fingerprint(embedder_spec), pipeline_fingerprint(config))
