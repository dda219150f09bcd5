"""What a calibrated threshold was measured with: the pipeline's fingerprint.

A threshold is a point on a score distribution, and every library that touches pixels or numbers moves that
distribution a little: JPEG decoding and resizing (OpenCV), the similarity warp (OpenCV), the arithmetic
(numpy), the kernels (the interpreter and XNNPACK), the model files, and the settings that choose and
prepare a face. `appliance eval --calibrate` writes this fingerprint into the manifest's evidence; the
self-test and the daemon's start compare it with what is running and say plainly what differs.

`python` is recorded but not compared. `machine` is not compared as a library is: another CPU architecture
runs other kernels (XNNPACK's NEON against AVX2), and its scores drift a little from those the threshold was
measured on (docs/install.md, "x86 against arm64"). A van on another architecture than the calibration's is
covered only when the manifest carries evidence measured there, `[calibration.evidence.arch.<machine>]`
(written by `python -m appliance.devtools.arch_compare compare ... --evidence`), for this embedder file and
this threshold, with no pair of its faces on the other side of the threshold; otherwise that is one
difference of its own (machine_difference).
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

import cv2
import numpy as np

from appliance.config import Config
from appliance.runtime.background_build import rebuilt_from_calibrated_photos
from appliance.runtime.cpu import cpu_simd
from appliance.runtime.manifest import ONNXRUNTIME, Manifest, ModelSpec, load_manifest, sha256_of
from appliance.runtime.types import Normalisation
from appliance.vision.align import ARCFACE_TEMPLATE, METHOD
from appliance.vision.types import PipelineFingerprint

# not compared as versions are (machine: machine_difference; cpu and background_rebuilt: docs/accuracy.md,
# "One threshold on every x86 CPU")
INFORMATIONAL = ("python", "machine", "cpu", "background_rebuilt")
# How far the calibrated threshold may move when the same pipeline runs on an x86 CPU that rounds differently
# (numpy's AVX-512 kernels against AVX2): 0.0003 measured (docs/accuracy.md, "One threshold on every x86 CPU");
# the smallest library change measured moved it 0.0034. A calibration test allows this much on such a CPU.
CPU_ARITHMETIC_TOLERANCE = 0.002


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


def pipeline_fingerprint(config: Config, normalisation: Normalisation | None = None) -> PipelineFingerprint:
    """The fingerprint of the pipeline this configuration builds (flat, TOML-friendly, strings only).

    `normalisation`: the embedder's [normalisation] table being calibrated now (its background set is then
    the calibrated one by definition), instead of the manifest's."""
    manifest = load_manifest(config.models.dir)
    embedder = manifest.get(config.models.embedder, "embedder")
    fingerprint = _embedding_pipeline(config, manifest)
    if norm := normalisation or embedder.normalisation:  # the threshold is on the normalised scale: so is its set
        path = manifest.path.parent / norm["background"]
        digest = sha256_of(path) if path.is_file() else "missing"
        if digest != norm.get("sha256") and (
                build := rebuilt_from_calibrated_photos(path, norm, pipeline_digest(fingerprint))):
            # the calibrated set, rebuilt from its photos by this very pipeline on a CPU that rounds differently
            fingerprint["background_rebuilt"] = (f"sha256:{digest} from the calibrated photos on {build['cpu']} "
                                                 f"(calibrated file sha256:{norm.get('sha256')})")
            digest = str(norm.get("sha256"))
        fingerprint["scores"] = f"{norm['method']} top-{norm['k']} background sha256:{digest}"
    return fingerprint


def pipeline_digest(fingerprint: PipelineFingerprint | dict[str, Any] | None) -> str | None:
    """One sha256 over what a fingerprint compares, but the scores' background set: the pipeline that embeds a
    face, recorded beside a background set it built (runtime/background_build.py). None for no fingerprint."""
    if not fingerprint:
        return None
    compared = {k: str(v) for k, v in fingerprint.items() if k not in INFORMATIONAL and k != "scores"}
    return hashlib.sha256(json.dumps(compared, sort_keys=True).encode()).hexdigest()


def embedding_pipeline_digest(config: Config) -> str:
    """pipeline_digest of the pipeline this configuration builds (what `appliance models background` records)."""
    return str(pipeline_digest(_embedding_pipeline(config, load_manifest(config.models.dir))))


def _embedding_pipeline(config: Config, manifest: Manifest) -> PipelineFingerprint:
    """Everything that turns pixels into an embedding, and the versions that run it."""
    embedder = manifest.get(config.models.embedder, "embedder")
    landmarks = manifest.get(config.models.landmarks, "landmarks") if config.models.landmarks else None
    detector = manifest.get(config.models.detector, "detector")
    d, q = config.detector, config.quality
    inp = embedder.input
    fingerprint: PipelineFingerprint = {
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "interpreter": interpreter_version([s for s in (detector, landmarks, embedder) if s is not None]),
        "xnnpack": str(config.runtime.xnnpack).lower(),
        "detector": _model(detector),
        "landmarks": _model(landmarks),
        "embedder": _model(embedder),
        "alignment": ("5 points from the face mesh" if landmarks else "4 detector keypoints")
        + f", similarity ({METHOD}) onto the 112x112 template "
        + ",".join(f"{v:g}" for v in ARCFACE_TEMPLATE.ravel()),
        "preprocessing": f"{inp.get('colour', 'RGB')} {inp.get('dtype')} mean {inp.get('mean')} std {inp.get('std')}"
        f"{', mirror-averaged' if config.models.embed_flip else ''}",
        "detection": f"score {d.score_threshold} nms {d.nms_iou} max {d.max_faces}",
        "quality_gate": f"eyes {q.min_interocular_px}px sharpness {q.min_sharpness} yaw {q.max_yaw_deg} "
        f"pitch {q.max_pitch_deg} score {q.min_score}",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_simd(),
    }
    return fingerprint


def pipeline_differences(calibrated: PipelineFingerprint | None, running: PipelineFingerprint) -> list[str]:
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


def _evidence(embedder_spec: ModelSpec) -> dict[str, Any]:
    cal = embedder_spec.calibration
    return cal.evidence if cal is not None and isinstance(cal.evidence, dict) else {}


def calibrated_fingerprint(embedder_spec: ModelSpec) -> PipelineFingerprint | None:
    return _evidence(embedder_spec).get("pipeline")


def machine_difference(evidence: dict[str, Any], running: PipelineFingerprint, threshold: float) -> str | None:
    """None when the threshold is evidenced on the running CPU architecture: the one it was calibrated on, or
    one with `evidence.arch.<machine>` for the same embedder file and threshold and no pair crossing it."""
    calibrated_on = (evidence.get("pipeline") or {}).get("machine")
    machine = running["machine"]
    if calibrated_on is None or machine == calibrated_on:
        return None
    arch = (evidence.get("arch") or {}).get(machine)
    how = "make arm64-test, then arch_compare --evidence; docs/install.md"
    if not isinstance(arch, dict):
        return (f"machine {machine} (calibrated on {calibrated_on}; the manifest has no evidence that the scores "
                f"hold on {machine}: {how})")
    if arch.get("embedder") != running["embedder"]:
        return f"machine {machine} (its evidence is for {arch.get('embedder')}, not this embedder file: {how})"
    if not isinstance(arch.get("threshold"), (int, float)) or abs(arch["threshold"] - threshold) > 1e-9:
        return f"machine {machine} (its evidence was measured at threshold {arch.get('threshold')}: {how})"
    if arch.get("pairs_crossing_threshold", -1) != 0:
        return (f"machine {machine} (its evidence has {arch.get('pairs_crossing_threshold')} pair(s) on the other "
                f"side of the threshold than on {calibrated_on})")
    return None


def pipeline_warning(config: Config, embedder_spec: ModelSpec) -> list[str]:
    """The differences between the running pipeline and the one the embedder's threshold was calibrated on,
    the CPU architecture included (machine_difference)."""
    if embedder_spec.calibration is None:
        return []  # no calibrated threshold: matcher.threshold is set by hand, and says so itself
    running = pipeline_fingerprint(config)
    out = pipeline_differences(calibrated_fingerprint(embedder_spec), running)
    machine = machine_difference(_evidence(embedder_spec), running, embedder_spec.calibration.threshold)
    return out + ([machine] if machine else [])
