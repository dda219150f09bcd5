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
METHOD = "least squares (Umeyama)"


def similarity_to_template(points: np.ndarray, template: np.ndarray) -> np.ndarray | None:
    """The 2x3 similarity (rotation, uniform scale, shift) that best maps the points onto the template in the
    least-squares sense (Umeyama 1991, as insightface's reference alignment), or None for degenerate points.

    Every point counts: with five noisy landmarks a robust fit that keeps only some of them (LMEDS, used
    before) aligns worse (docs/accuracy.md, "Alignment")."""
    src, dst = points.astype(np.float64), template.astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c**2).sum()) / len(src)
    if not np.isfinite(src_var) or src_var < 1e-6:  # all points in one place: no face to align
        return None
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])  # a rotation, never a mirror
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d)) / src_var
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]]).astype(np.float32)


def _warp(frame_rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(frame_rgb, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)


def align(frame_rgb: np.ndarray, points: np.ndarray, method: str = "mesh") -> AlignedFace | None:
    """Warp the frame so the five points land on the template (`points` in template order); None when the
    points are degenerate."""
    matrix = similarity_to_template(points, ARCFACE_TEMPLATE)
    if matrix is None:
        return None
    return AlignedFace(image=_warp(frame_rgb, matrix), points=points.astype(np.float32), method=method)


def align_on_keypoints(frame_rgb: np.ndarray, detection: Detection) -> AlignedFace:
    """Fallback: the detector's eyes, nose and mouth centre onto the template (mouth = mean of corners)."""
    kp = detection.keypoints
    points = np.stack([kp[RIGHT_EYE], kp[LEFT_EYE], kp[NOSE_TIP], kp[MOUTH]])
    template = np.vstack([ARCFACE_TEMPLATE[:3], ARCFACE_TEMPLATE[3:].mean(0, keepdims=True)])
    matrix = similarity_to_template(points, template)
    if matrix is None:  # degenerate keypoints: the box's centre at the template's scale, so a crop still exists
        cx, cy = (detection.box[0] + detection.box[2]) / 2, (detection.box[1] + detection.box[3]) / 2
        scale = ALIGNED_SIZE / max(detection.width, detection.height, 1.0)
        matrix = np.float32([[scale, 0, ALIGNED_SIZE / 2 - scale * cx], [0, scale, ALIGNED_SIZE / 2 - scale * cy]])
    return AlignedFace(image=_warp(frame_rgb, matrix), points=points.astype(np.float32), method="keypoints")
