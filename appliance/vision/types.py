"""Typed results passed between the vision stages. All coordinates are frame pixels (x right, y down)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

# Detector keypoint order (subject's point of view), as BlazeFace emits them.
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)


class DetectionJson(TypedDict):
    """A detection as `appliance detect --json` prints it."""

    box: list[float]  # x1, y1, x2, y2 in pixels
    score: float
    landmarks: list[list[float]]  # the keypoints, [x, y] each


@dataclass(frozen=True)
class Detection:
    """One face found by the detector."""

    box: np.ndarray  # [x1, y1, x2, y2], float32
    score: float
    keypoints: np.ndarray  # (6, 2): right eye, left eye, nose tip, mouth, right ear, left ear

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.keypoints[RIGHT_EYE] - self.keypoints[LEFT_EYE]))

    def to_json(self) -> DetectionJson:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints],
        }


@dataclass(frozen=True)
class QualityVerdict:
    """Whether a face is good enough to embed, and if not, why (counted, never logged with content)."""

    ok: bool
    reason: str  # "ok", "too_small", "blurred", "pose", "low_score"
    interocular_px: float
    sharpness: float
    yaw_deg: float
    pitch_deg: float
    score: float

    @property
    def quality(self) -> float:
        """A single number to rank looks of the same track: bigger, sharper, more frontal is better."""
        frontal = max(0.0, 1.0 - abs(self.yaw_deg) / 90.0) * max(0.0, 1.0 - abs(self.pitch_deg) / 90.0)
        return self.interocular_px * min(self.sharpness, 500.0) ** 0.5 * frontal * self.score


@dataclass(frozen=True)
class AlignedFace:
    """A 112x112 RGB crop in the canonical ArcFace pose, and the five points it was aligned on."""

    image: np.ndarray  # (112, 112, 3) uint8 RGB
    points: np.ndarray  # (5, 2) frame pixels: right eye, left eye, nose tip, right mouth corner, left mouth corner
    method: str  # "mesh" or "keypoints"


@dataclass
class Face:
    """Everything the pipeline knows about one face in one frame. Lives only in memory."""

    detection: Detection
    quality: QualityVerdict | None = None
    aligned: AlignedFace | None = None
    embedding: np.ndarray | None = None  # (D,) float32, L2-normalised
    track_id: int | None = None
    extra: dict = field(default_factory=dict)


class PipelineFingerprint(TypedDict, total=False):
    """What a calibrated threshold was measured with (vision/fingerprint.py): flat, strings only, so it sits in
    the manifest's evidence as a TOML table. A calibration's fingerprint may be older and lack a key; the
    running one has them all, `scores` only when the embedder's scores are normalised."""

    numpy: str
    opencv: str
    interpreter: str
    xnnpack: str
    detector: str
    landmarks: str
    embedder: str
    alignment: str
    preprocessing: str
    detection: str
    quality_gate: str
    python: str
    machine: str
    cpu: str  # the SIMD level numpy and the kernels dispatch on: recorded, not compared
    scores: str
    background_rebuilt: str  # recorded: the set was rebuilt here from the calibrated photos (other bytes)
