"""Quality gate: is a face big, sharp, frontal and confident enough to embed? Says why not.

Pose comes from the detector's keypoints, so the gate runs before the costlier landmark and embedding
models. The angles are approximations good enough to rank and gate looks, not head-pose measurements.
"""

from __future__ import annotations

import cv2
import numpy as np

from appliance.config import QualityConfig
from appliance.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE, Detection, QualityVerdict

SHARPNESS_SIZE = 64  # faces are resized to this before the Laplacian, so sharpness is size-independent
NOSE_DEPTH_RATIO = 0.6  # nose-tip depth in front of the eyes, as a share of eye distance (average adult)
FRONTAL_NOSE_RATIO = 0.5  # nose tip between eye line and mouth, frontal face


def estimate_pose(detection: Detection) -> tuple[float, float]:
    """(yaw, pitch) in degrees from eyes, nose and mouth, after removing roll."""
    kp = detection.keypoints
    right, left, nose, mouth = kp[RIGHT_EYE], kp[LEFT_EYE], kp[NOSE_TIP], kp[MOUTH]
    eye_vec = left - right
    iod = float(np.linalg.norm(eye_vec))
    if iod < 1e-6:
        return 90.0, 90.0
    ux = eye_vec / iod
    uy = np.array([-ux[1], ux[0]])
    mid = (left + right) / 2
    nose_x = float((nose - mid) @ ux) / iod
    yaw = float(np.degrees(np.arctan2(nose_x, NOSE_DEPTH_RATIO)))
    eye_mouth = float((mouth - mid) @ uy)
    if eye_mouth <= 1e-6:
        return yaw, 90.0
    ratio = float((nose - mid) @ uy) / eye_mouth
    pitch = float(np.degrees(np.arctan2(ratio - FRONTAL_NOSE_RATIO, 0.5)))
    return yaw, pitch


def sharpness(frame_gray: np.ndarray, detection: Detection) -> float:
    """Variance of the Laplacian on the central face region, resized to a fixed size."""
    x1, y1, x2, y2 = detection.box
    w, h = x2 - x1, y2 - y1
    x1, x2 = int(max(0, x1 + 0.15 * w)), int(min(frame_gray.shape[1], x2 - 0.15 * w))
    y1, y2 = int(max(0, y1 + 0.15 * h)), int(min(frame_gray.shape[0], y2 - 0.15 * h))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    patch = cv2.resize(frame_gray[y1:y2, x1:x2], (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(patch, cv2.CV_32F).var())


def assess(frame_gray: np.ndarray, detection: Detection, cfg: QualityConfig) -> QualityVerdict:
    yaw, pitch = estimate_pose(detection)
    sharp = sharpness(frame_gray, detection)
    iod = detection.interocular
    if detection.score < cfg.min_score:
        reason = "low_score"
    elif iod < cfg.min_interocular_px:
        reason = "too_small"
    elif abs(yaw) > cfg.max_yaw_deg or abs(pitch) > cfg.max_pitch_deg:
        reason = "pose"
    elif sharp < cfg.min_sharpness:
        reason = "blurred"
    else:
        reason = "ok"
    return QualityVerdict(ok=reason == "ok", reason=reason, interocular_px=iod, sharpness=sharp,
                          yaw_deg=yaw, pitch_deg=pitch, score=detection.score)
