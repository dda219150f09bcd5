"""Which passes the detector runs on a frame of a given size, and which boxes it drops (pure logic)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from appliance.vision.detector import (
    MAX_AUTO_GRID,
    MAX_PASS_RATIO,
    MIN_MODEL_FACE_PX,
    TileSchedule,
    auto_grids,
    spanning_boxes,
    window_side,
)


@pytest.mark.parametrize(("size", "grids"), [
    ((1024, 768), (1, 2, 3)),  # the earlier fixed default where it was already fine enough
    ((1280, 720), (1, 2, 3)),
    ((450, 344), (1, 2, 3)),  # never coarser than 3x3
    ((1600, 898), (1, 2, 4)),
    ((1920, 1080), (1, 2, 5)),
])
def test_auto_grids_follow_the_frame_size(size, grids):
    assert auto_grids(*size, min_face_px=40, input_size=192, overlap=0.25, margin=0.25) == grids


@pytest.mark.parametrize("size", [(1024, 768), (1280, 720), (1600, 898), (1920, 1080), (2560, 1440), (3000, 2000)])
def test_auto_grids_see_the_smallest_wanted_face_big_enough_and_leave_no_gap(size):
    grids = auto_grids(*size, min_face_px=40, input_size=192, overlap=0.25, margin=0.25)
    sides = [window_side(*size, g, 0.25, 0.25) for g in grids]
    assert grids[0] == 1
    # The finest window shows a 40-px face at MIN_MODEL_FACE_PX model pixels or more (or is the finest allowed).
    assert 40 * 192 / sides[-1] >= MIN_MODEL_FACE_PX - 1e-6 or grids[-1] == MAX_AUTO_GRID
    # Between the finer passes no step is larger than MAX_PASS_RATIO (the whole frame is always run).
    for coarse, fine in itertools.pairwise(sides[1:]):
        assert coarse / fine <= MAX_PASS_RATIO + 1e-9


def test_a_box_around_two_better_faces_is_spanning():
    faces = np.array([[100, 100, 160, 160], [102, 190, 162, 250]], np.float32)  # one above the other
    span = np.array([[80, 120, 190, 230]], np.float32)  # holds both centres
    boxes = np.concatenate([faces, span])
    assert spanning_boxes(boxes, np.array([0.9, 0.9, 0.67])).tolist() == [False, False, True]
    # Not when the faces inside score lower (they may be false detections on a real face) ...
    assert not spanning_boxes(boxes, np.array([0.5, 0.5, 0.67])).any()
    # ... nor when only one face is inside, nor when the inner boxes are as big as the outer one.
    assert not spanning_boxes(boxes[1:], np.array([0.9, 0.67])).any()
    same_size = np.array([[0, 0, 100, 100], [10, 10, 110, 110], [20, 20, 120, 120]], np.float32)
    assert not spanning_boxes(same_size, np.array([0.6, 0.9, 0.9])).any()


def test_an_automatic_schedule_resolves_the_grids_per_frame_size():
    s = TileSchedule(lambda w, h: (1, 2, 5) if w >= 1920 else (1, 2, 3), "round_robin")
    assert [s.next(1920, 1080) for _ in range(3)] == [(1, 2), (1, 5), (1, 2)] and s.period == 2
    assert TileSchedule(lambda w, h: (1, 2, 3)).next(640, 480) == (1, 2, 3)
    with pytest.raises(ValueError, match="width and height"):
        s.next()
