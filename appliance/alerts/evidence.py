"""The live face crop an officer compares with the reference photo. Made only for an alert, in memory."""

from __future__ import annotations

import cv2
import numpy as np

CROP_MARGIN = 0.35  # share of the face box added on each side, so the officer sees hair and jaw line
CROP_MAX_SIDE = 320
JPEG_QUALITY = 90


def face_crop_jpeg(frame_bgr: np.ndarray, box: np.ndarray) -> bytes:
    """A JPEG of the face with some context, at most CROP_MAX_SIDE pixels on its long side."""
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    x2, y2 = min(w, int(x2 + mx)), min(h, int(y2 + my))
    crop = frame_bgr[y1:y2, x1:x2]
    scale = CROP_MAX_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
