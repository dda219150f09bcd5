"""The detector on crowd photos with the shipped settings: mid-size faces in a big crowd are found, and a box
around two faces never passes the quality gate. Real BlazeFace, real photos (docs/detection.md)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from appliance.config import load_config
from appliance.vision.detector import FaceDetector
from appliance.vision.pipeline import FacePipeline

# 6.jpg: two faces one above the other (top row and second row, right of centre), boxes placed by hand.
STACKED_FACES_6 = ((681.0, 104.0, 748.0, 170.0), (674.0, 199.0, 750.0, 275.0))

# 17.jpg, bottom third (face centre at y >= 580, where faces are about 35-130 px): the centre of every face a
# person can see there with both eyes, counted by hand on 1.5x crops (docs/detection.md). 29 were found by the
# detector at this commit and checked by eye; the last 7 are faces it misses (a woman in a pink hijab, two men
# looking down or up, four partly hidden behind others). Heads turned away or hidden behind hands are not counted.
FACES_17_BOTTOM = (
    (76, 714), (81, 588), (180, 603), (240, 645), (285, 632), (307, 731), (328, 868), (339, 628), (369, 672),
    (380, 772), (381, 593), (432, 880), (466, 752), (463, 632), (539, 580), (585, 622), (718, 664), (812, 662),
    (833, 618), (861, 582), (938, 751), (1052, 654), (1165, 670), (1258, 602), (1324, 730), (1376, 643),
    (1405, 739), (1472, 776), (1521, 644),
    (238, 717), (170, 760), (540, 650), (643, 590), (990, 603), (1333, 587), (1420, 620),
)
# Recall floor on those 36 faces. This commit finds 29 (81%); the fixed [1, 2, 3] tiling before it found 15
# (42%), because its finest window showed a 40-50 px face at 12-15 model pixels, where BlazeFace full range
# misses a third of faces. 25 (70%) leaves four faces of margin for another CPU's float rounding and stays
# far above the old figure, so a return to windows that are too coarse fails.
RECALL_FLOOR_17 = 0.70


def _recall(detections, centres) -> float:
    """Share of the hand-placed face centres that fall inside a detection box, each box claiming one face."""
    boxes = [d.box for d in detections]
    used: set[int] = set()
    found = 0
    for x, y in centres:
        for i, b in enumerate(boxes):
            if i not in used and b[0] <= x <= b[2] and b[1] <= y <= b[3]:
                used.add(i)
                found += 1
                break
    return found / len(centres)


@pytest.fixture(scope="module")
def photo_6(crowd_dir):
    return cv2.imread(str(crowd_dir / "6.jpg"))


def _covers(box: np.ndarray, face: tuple[float, ...]) -> float:
    """Share of the face's area inside the box."""
    w = max(0.0, min(box[2], face[2]) - max(box[0], face[0]))
    h = max(0.0, min(box[3], face[3]) - max(box[1], face[1]))
    return w * h / ((face[2] - face[0]) * (face[3] - face[1]))


def _holds_both(box: np.ndarray) -> bool:
    """A box over a third or more of each of the two faces: a box around both, not a box on one."""
    return all(_covers(box, face) >= 1 / 3 for face in STACKED_FACES_6)


def test_the_whole_frame_pass_alone_draws_one_box_around_two_stacked_faces(pipeline, photo_6):
    """The case is real: on the whole frame (each face about 10 model pixels), BlazeFace puts one box, scored
    above the gate's minimum, between the two faces."""
    whole = FaceDetector(pipeline.detector.model, tiles=(1,), whole_frame_margin=0.25).detect(photo_6)
    spanning = [d for d in whole if _holds_both(d.box)]
    assert spanning and spanning[0].score >= pipeline.config.quality.min_score


def test_a_box_holding_two_faces_does_not_pass_the_gate(pipeline, photo_6):
    faces = pipeline.detect(photo_6)
    assert not [f for f in faces if _holds_both(f.detection.box)], "a box around both faces was kept"
    assert not [f for f in faces if f.quality.ok and _holds_both(f.detection.box)]
    # Both real faces are still there, each in its own box, and each is embeddable.
    for face in STACKED_FACES_6:
        own = [f for f in faces if _covers(f.detection.box, face) >= 0.5]
        assert len(own) == 1 and own[0].quality.ok, (face, [f.detection.box for f in own])
    assert sum(f.quality.ok for f in faces) == 14  # everyone in the photo, counted by hand


def test_mid_size_faces_in_a_big_crowd_are_found(pipeline, crowd_dir):
    image = cv2.imread(str(crowd_dir / "17.jpg"))
    assert pipeline.detector.grids_for(image.shape[1], image.shape[0]) == (1, 2, 4)
    recall = _recall(pipeline.detector.detect(image), FACES_17_BOTTOM)
    old = FacePipeline.from_config(load_config(overrides={"detector.tiles": [1, 2, 3]}))
    old_recall = _recall(old.detector.detect(image), FACES_17_BOTTOM)
    print(f"\n17.jpg bottom third: recall {recall:.2f} (fixed [1, 2, 3]: {old_recall:.2f}) of {len(FACES_17_BOTTOM)}")
    assert recall >= RECALL_FLOOR_17
    assert old_recall < RECALL_FLOOR_17  # the floor tells the fix apart from what it fixed
