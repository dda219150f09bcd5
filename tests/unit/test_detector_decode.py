"""Anchor generation, box decoding, weighted NMS and tiling, on constructed inputs."""

import numpy as np

from appliance.vision.detector import decode, make_anchors, tile_grid, weighted_nms


def test_anchor_counts_match_the_models():
    assert make_anchors(192).shape == (2304, 2)
    assert make_anchors(128).shape == (896, 2)


def test_full_range_anchor_centres():
    a = make_anchors(192)
    assert np.allclose(a[0], [0.5 / 48, 0.5 / 48])
    assert np.allclose(a[1], [1.5 / 48, 0.5 / 48])  # x runs fastest
    assert np.allclose(a[48], [0.5 / 48, 1.5 / 48])


def test_decode_box_and_keypoints_in_input_units():
    anchors = make_anchors(192)
    reg = np.zeros((1, 2304, 16), np.float32)
    logits = np.full((1, 2304, 1), -50.0, np.float32)
    i = 48 * 10 + 20  # row 10, column 20
    reg[0, i, :4] = [9.6, -4.8, 38.4, 57.6]  # offset (+0.05, -0.025), size (0.2, 0.3)
    reg[0, i, 4:6] = [19.2, 0.0]  # first keypoint +0.1 in x
    logits[0, i, 0] = 3.0
    boxes, kps, scores = decode(reg, logits, anchors, 192, 0.5)
    assert len(scores) == 1 and abs(scores[0] - 1 / (1 + np.exp(-3))) < 1e-6
    cx, cy = anchors[i] + [0.05, -0.025]
    assert np.allclose(boxes[0], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    assert np.allclose(kps[0, 0], anchors[i] + [0.1, 0.0], atol=1e-6)


def test_decode_clips_extreme_logits():
    anchors = make_anchors(128)
    reg = np.zeros((1, 896, 16), np.float32)
    logits = np.full((1, 896, 1), -1e30, np.float32)
    logits[0, 0, 0] = 1e30
    _, _, scores = decode(reg, logits, anchors, 128, 0.5)
    assert len(scores) == 1 and np.isfinite(scores).all()


def test_weighted_nms_merges_a_cluster_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    kps[1] += 2.0
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    out_boxes, out_kps, out_scores = weighted_nms(boxes, kps, scores, 0.3, 10)
    assert len(out_scores) == 2
    assert np.allclose(out_scores, [0.9, 0.8])
    # Score-weighted mean of the first two boxes.
    assert np.allclose(out_boxes[0], (boxes[0] * 0.9 + boxes[1] * 0.3) / 1.2)
    assert np.allclose(out_kps[0], 2.0 * 0.3 / 1.2)
    assert np.allclose(out_boxes[1], boxes[2])


def test_weighted_nms_empty_and_max_out():
    b, _, s = weighted_nms(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32),
                           0.3, 5)
    assert b.shape == (0, 4) and len(s) == 0
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(8)], np.float32)
    _, _, s = weighted_nms(boxes, np.zeros((8, 6, 2), np.float32), np.linspace(0.9, 0.5, 8).astype(np.float32),
                           0.3, 3)
    assert len(s) == 3


def test_tiles_cover_the_frame_with_overlap():
    for w, h, grid in [(1920, 1080, 2), (1920, 1080, 3), (1024, 768, 6), (640, 480, 4)]:
        tiles = tile_grid(w, h, grid, 0.25)
        covered = np.zeros((h, w), bool)
        for t in tiles:
            assert t.x >= 0 and t.y >= 0
            covered[t.y : t.y + t.side, t.x : t.x + t.side] = True
        assert covered.all(), (w, h, grid)
        assert len({t.side for t in tiles}) == 1


def test_whole_frame_pass_adds_a_centred_margin():
    (t,) = tile_grid(1000, 500, 1, 0.25, margin=0.25)
    assert t.side == 1500 and t.x == -250 and t.y == -500
