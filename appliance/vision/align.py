"""Alignment: a similarity transform of five face points onto the canonical 112x112 ArcFace template."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE, AlignedFace, Detection

ALIGNED_SIZE = 112
# Right eye, left eye (subject's view; image left first), nose tip, right and left mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
)


def similarity_to_template(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=cv2.LMEDS)
    if matrix is None:  # degenerate points: fall back to least squares on all of them
        matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=0)
    return matrix


def align(frame_rgb: np.ndarray, points: np.ndarray, method: str = "mesh") -> AlignedFace:
    """Warp the frame so the five points land on the template. `points` are in template order."""
    matrix = similarity_to_template(points, ARCFACE_TEMPLATE)
    image = cv2.warpAffine(frame_rgb, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    return AlignedFace(image=image, points=points.astype(np.float32), method=method)


def align_on_keypoints(frame_rgb: np.ndarray, detection: Detection) -> AlignedFace:
    """Fallback: the detector's eyes, nose and mouth centre onto the template (mouth = mean of corners)."""
    kp = detection.keypoints
    points = np.stack([kp[RIGHT_EYE], kp[LEFT_EYE], kp[NOSE_TIP], kp[MOUTH]])
    template = np.vstack([ARCFACE_TEMPLATE[:3], ARCFACE_TEMPLATE[3:].mean(0, keepdims=True)])
    matrix = similarity_to_template(points, template)
    image = cv2.warpAffine(frame_rgb, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR)
    return AlignedFace(image=image, points=points.astype(np.float32), method="keypoints")
