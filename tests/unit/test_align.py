"""The 5-point alignment: the least-squares similarity onto the ArcFace template, and degenerate points."""

import cv2
import numpy as np

from appliance.vision.align import ALIGNED_SIZE, ARCFACE_TEMPLATE, align, align_on_keypoints, similarity_to_template
from appliance.vision.types import Detection


def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.radians(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([r, np.array(shift)[:, None]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_recovers_an_exact_similarity():
    # Template points seen in a frame through a known similarity: the fit is its inverse, to float precision.
    frame_to_template = _similarity(-17.0, 0.42, (-30.0, 12.5))
    template_to_frame = cv2.invertAffineTransform(frame_to_template.astype(np.float64))
    frame_points = _apply(template_to_frame, ARCFACE_TEMPLATE.astype(np.float64))
    fitted = similarity_to_template(frame_points, ARCFACE_TEMPLATE)
    assert fitted is not None
    np.testing.assert_allclose(fitted, frame_to_template, atol=1e-4)


def test_noisy_points_get_the_least_squares_fit():
    # No other similarity maps the points closer to the template (in summed squared distance): small
    # perturbations of the fitted parameters only ever increase the error.
    rng = np.random.default_rng(3)
    truth = cv2.invertAffineTransform(_similarity(8.0, 0.5, (20.0, -4.0)))
    points = _apply(truth, ARCFACE_TEMPLATE.astype(np.float64)) + rng.normal(0, 3.0, (5, 2))
    fitted = similarity_to_template(points, ARCFACE_TEMPLATE).astype(np.float64)

    def error(m: np.ndarray) -> float:
        return float(((_apply(m, points) - ARCFACE_TEMPLATE) ** 2).sum())

    a, b = fitted[0, 0], fitted[1, 0]  # a similarity is [[a, -b, tx], [b, a, ty]]
    assert np.isclose(fitted[0, 1], -b, atol=1e-5) and np.isclose(fitted[1, 1], a, atol=1e-5)
    best = error(fitted)
    for da, db, dx, dy in rng.normal(0, [0.01, 0.01, 0.5, 0.5], (200, 4)):
        other = np.array([[a + da, -(b + db), fitted[0, 2] + dx], [b + db, a + da, fitted[1, 2] + dy]])
        assert error(other) >= best - 1e-6


def test_a_mirrored_face_is_rotated_not_reflected():
    # Left and right swapped: the best *similarity* may not mirror the face back (det > 0).
    mirrored = ARCFACE_TEMPLATE.copy()
    mirrored[:, 0] = 112 - mirrored[:, 0]
    fitted = similarity_to_template(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(fitted[:, :2]) > 0


def test_degenerate_points_give_no_alignment_and_the_keypoints_still_give_a_crop():
    frame = np.full((200, 200, 3), 128, np.uint8)
    same_place = np.full((5, 2), 50.0, np.float32)
    assert similarity_to_template(same_place, ARCFACE_TEMPLATE) is None
    assert align(frame, same_place) is None
    collapsed = Detection(np.float32([40, 40, 120, 120]), 0.9, np.full((6, 2), 80.0, np.float32))
    crop = align_on_keypoints(frame, collapsed)
    assert crop.image.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3) and crop.method == "keypoints"
