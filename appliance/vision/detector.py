"""Face detection with MediaPipe BlazeFace: anchors, box decoding and weighted NMS, vectorised with numpy.

Works on a frame of any size: the frame (or each tile of it) is letterboxed to the model's square input,
and boxes and keypoints come back in frame pixels. Small faces need tiles: a 192-pixel input sees a
30-pixel face in a 1080p frame as 5 pixels, below what the model can find. BlazeFace full range finds a face
reliably from about 15 pixels in its input (measured in docs/detection.md), so the passes are chosen from the
frame's size and the smallest face wanted (`auto_grids`), not as a fixed number of tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from appliance.runtime.loader import Model
from appliance.vision.types import Detection

# Anchor layouts of the two BlazeFace variants (MediaPipe's SSD anchor options, fixed anchor size 1).
ANCHOR_LAYOUTS = {
    192: {"strides": (4,), "per_cell": (1,)},  # full range: 48x48x1 = 2304
    128: {"strides": (8, 16), "per_cell": (2, 6)},  # short range: 16x16x2 + 8x8x6 = 896
}


# Smallest face, in model-input pixels, that BlazeFace full range finds reliably: 94% of faces of 14-16 px
# against 66% at 10-12 px and 19% at 6-8 px (docs/detection.md, issue 15, "Why").
MIN_MODEL_FACE_PX = 15.0
# Consecutive passes' windows differ in size by at most this factor, so a face too big for one pass is at
# least MIN_MODEL_FACE_PX in the next coarser one (the model is reliable over more than 4x in face size).
MAX_PASS_RATIO = 2.5
# The coarsest finest grid: the earlier fixed default [1, 2, 3], which still counts a small frame's small faces.
MIN_AUTO_GRID = 3
# The finest automatic grid: bounds the cost on a very large frame (a 4K frame would otherwise want 10x10).
MAX_AUTO_GRID = 8
# A box whose area holds the centres of this many better-scored, smaller faces is a box around a group.
SPANNED_FACES = 2
SPANNED_MAX_WIDTH = 0.8  # "smaller": at most this share of the spanning box's width


def make_anchors(input_size: int) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order the model emits its regressors."""
    layout = ANCHOR_LAYOUTS[input_size]
    centres = []
    for stride, per_cell in zip(layout["strides"], layout["per_cell"], strict=True):
        cells = math.ceil(input_size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int, min_score: float):
    """Decode raw outputs to (boxes (M,4) x1y1x2y2, keypoints (M,6,2), scores (M,)) in [0,1] input units."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100.0, 100.0)))
    keep = scores >= min_score
    reg, anc, scores = regressors.reshape(-1, 16)[keep] / input_size, anchors[keep], scores[keep]
    centre = anc + reg[:, 0:2]
    half = reg[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
    return boxes, keypoints, scores


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float, max_out: int):
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes their score-weighted mean.

    Loops once per output face (not per anchor); the overlap test inside is vectorised.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    out_boxes, out_kps, out_scores = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        cluster = alive & (iou_one_to_many(boxes[i], boxes) > iou)
        cluster[i] = True
        w = scores[cluster][:, None]
        out_boxes.append((boxes[cluster] * w).sum(0) / w.sum())
        out_kps.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_scores.append(scores[i])
        alive &= ~cluster
        if len(out_scores) >= max_out:
            break
    if not out_scores:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32)
    return np.array(out_boxes, np.float32), np.array(out_kps, np.float32), np.array(out_scores, np.float32)


@dataclass(frozen=True)
class Tile:
    """A square window of the frame: top-left corner and side, in frame pixels."""

    x: int
    y: int
    side: int


def tile_grid(width: int, height: int, grid: int, overlap: float, margin: float = 0.0) -> list[Tile]:
    """Square tiles for an N×N pass: side = long edge / (N - (N-1)·overlap), spread evenly on each axis.

    The whole-frame pass (N = 1) adds `margin` (a share of the long edge) of black border on every side:
    BlazeFace full range scores a face that fills the window poorly, and better with context around it.
    """
    long_edge = max(width, height)
    if grid <= 1:
        pad = round(long_edge * margin)
        side = long_edge + 2 * pad
        return [Tile((width - side) // 2, (height - side) // 2, side)]
    side = max(1, round(long_edge / (grid - (grid - 1) * overlap)))
    step = side * (1 - overlap)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        n = math.ceil((length - side) / step) + 1
        return [round(v) for v in np.linspace(0, length - side, n)]

    return [Tile(x, y, side) for y in starts(height) for x in starts(width)]


def window_side(width: int, height: int, grid: int, overlap: float, margin: float = 0.0) -> float:
    """Side of the square window of an N×N pass (the whole-frame pass includes its black border)."""
    long_edge = max(width, height)
    if grid <= 1:
        return long_edge * (1 + 2 * margin)
    return long_edge / (grid - (grid - 1) * overlap)


def auto_grids(width: int, height: int, min_face_px: float, input_size: int, overlap: float,
               margin: float = 0.0) -> tuple[int, ...]:
    """The passes for a frame of this size: the finest grid whose window shows a `min_face_px` face at
    MIN_MODEL_FACE_PX model pixels (never coarser than 3×3, the earlier fixed default, which still counts the
    smaller faces of a small frame), then the coarsest grids that keep each step within MAX_PASS_RATIO, and
    the whole frame. 1024 px wide: (1, 2, 3); 1280×720: (1, 2, 3); 1600 px: (1, 2, 4); 1920×1080: (1, 2, 5).
    """
    target = min_face_px * input_size / MIN_MODEL_FACE_PX

    def side(g: int) -> float:
        return window_side(width, height, g, overlap, margin)

    fine = MIN_AUTO_GRID
    while side(fine) > target + 1e-6 and fine < MAX_AUTO_GRID:
        fine += 1
    grids = [fine]
    while grids[-1] > 1:
        current = side(grids[-1])
        # The coarsest grid still within the ratio; the next finer grid when none is (the ratio is a bound).
        within = [g for g in range(1, grids[-1]) if side(g) <= MAX_PASS_RATIO * current]
        grids.append(min(within) if within else grids[-1] - 1)
    return tuple(sorted(grids))


def spanning_boxes(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Boxes that hold the centres of SPANNED_FACES or more smaller, better-scored detections.

    BlazeFace on a coarse window can see two small neighbouring faces (one above the other in a group photo)
    as one face halfway between them. A real face hides what is behind it, so two other faces cannot have their
    centres inside its box; the better-scored faces inside are the real ones.
    """
    if len(boxes) < SPANNED_FACES + 1:
        return np.zeros(len(boxes), bool)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    widths = boxes[:, 2] - boxes[:, 0]
    inside = (
        (centres[None, :, 0] > boxes[:, None, 0]) & (centres[None, :, 0] < boxes[:, None, 2])
        & (centres[None, :, 1] > boxes[:, None, 1]) & (centres[None, :, 1] < boxes[:, None, 3])
    )  # inside[i, j]: the centre of j lies in box i
    held = inside & (widths[None, :] <= SPANNED_MAX_WIDTH * widths[:, None]) & (scores[None, :] > scores[:, None])
    return held.sum(axis=1) >= SPANNED_FACES


class FaceDetector:
    """BlazeFace on whole frames and tiles. Returns detections in frame pixels, best first.

    `tiles`: "auto" (the passes follow the frame's size and `min_face_px`, see `auto_grids`) or a fixed list
    of grids, 1 = whole frame and N = an N×N grid of overlapping tiles.
    """

    # [detector] settings a reload may change between frames. The tiling (tiles, tile_overlap, min_face_px,
    # whole_frame_margin, tile_schedule) is built into the daemon's TileSchedule at start: it needs a restart.
    RELOADABLE = frozenset({"score_threshold", "nms_iou", "max_faces"})

    def update_config(self, config) -> None:
        """A new DetectorConfig; call between frames from the thread that calls detect()."""
        self.score_threshold, self.nms_iou, self.max_faces = config.score_threshold, config.nms_iou, config.max_faces

    def __init__(self, model: Model, score_threshold: float = 0.5, nms_iou: float = 0.3,
                 tiles: Sequence[int] | str = (1,), tile_overlap: float = 0.25, max_faces: int = 128,
                 whole_frame_margin: float = 0.25, min_face_px: float = 40.0):
        self.model = model
        self.input_size = model.inputs[0].shape[1]
        self.anchors = make_anchors(self.input_size)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        if isinstance(tiles, str) and tiles != "auto":
            raise ValueError(f"tiles must be 'auto' or a list of grids, not {tiles!r}")
        self.tiles: tuple[int, ...] | str = tiles if isinstance(tiles, str) else tuple(tiles)
        self.tile_overlap = tile_overlap
        self.max_faces = max_faces
        self.whole_frame_margin = whole_frame_margin
        self.min_face_px = min_face_px

    def grids_for(self, width: int, height: int) -> tuple[int, ...]:
        """The passes a frame of this size gets when every pass runs."""
        if isinstance(self.tiles, str):
            return auto_grids(width, height, self.min_face_px, self.input_size, self.tile_overlap,
                              self.whole_frame_margin)
        return self.tiles

    def _run_window(self, rgb: np.ndarray, tile: Tile):
        """Detect in one square window (padded with black where it leaves the frame)."""
        h, w = rgb.shape[:2]
        x0, y0 = max(tile.x, 0), max(tile.y, 0)
        crop = rgb[y0 : min(tile.y + tile.side, h), x0 : min(tile.x + tile.side, w)]
        scale = self.input_size / tile.side
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        resized = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # Where the window leaves the frame (margin or last tile), the model sees black.
        ox, oy = round((x0 - tile.x) * scale), round((y0 - tile.y) * scale)
        resized = resized[: self.input_size - oy, : self.input_size - ox]
        canvas = np.zeros((self.input_size, self.input_size, 3), np.float32)
        canvas[oy : oy + resized.shape[0], ox : ox + resized.shape[1]] = resized
        x = (canvas / 127.5 - 1.0)[None]
        regressors, logits = self.model.run(x)
        boxes, kps, scores = decode(regressors, logits, self.anchors, self.input_size, self.score_threshold)
        # Back to frame pixels.
        boxes = boxes * tile.side + np.array([tile.x, tile.y, tile.x, tile.y], np.float32)
        kps = kps * tile.side + np.array([tile.x, tile.y], np.float32)
        return boxes, kps, scores

    def detect(self, frame_bgr: np.ndarray, grids: Sequence[int] | None = None) -> list[Detection]:
        """Faces in the frame; `grids` runs only those of the configured passes (see TileSchedule)."""
        h, w = frame_bgr.shape[:2]
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        every = self.grids_for(w, h)
        passes = tuple(every if grids is None else grids)
        if not passes:
            return []
        finest_wanted = min(window_side(w, h, g, self.tile_overlap, self.whole_frame_margin) for g in every)
        finest_ran = min(window_side(w, h, g, self.tile_overlap, self.whole_frame_margin) for g in passes)
        finest_ran_here = finest_ran <= finest_wanted * 1.01
        all_boxes, all_kps, all_scores, all_sides = [], [], [], []
        for grid in passes:
            side = window_side(w, h, grid, self.tile_overlap, self.whole_frame_margin)
            for tile in tile_grid(w, h, grid, self.tile_overlap, self.whole_frame_margin):
                boxes, kps, scores = self._run_window(rgb, tile)
                if grid > 1 and len(scores):
                    # A face cut by an inner tile edge is seen whole by a neighbouring tile: drop the part.
                    keep = self._inside_tile(boxes, tile, w, h)
                    boxes, kps, scores = boxes[keep], kps[keep], scores[keep]
                all_boxes.append(boxes)
                all_kps.append(kps)
                all_scores.append(scores)
                all_sides.append(np.full(len(scores), side, np.float32))
        if not all_scores:
            return []
        boxes, kps, scores = (np.concatenate(all_boxes), np.concatenate(all_kps), np.concatenate(all_scores))
        keep = ~self._left_to_a_finer_pass(boxes, np.concatenate(all_sides), finest_wanted, finest_ran_here)
        boxes, kps, scores = boxes[keep], kps[keep], scores[keep]
        boxes, kps, scores = weighted_nms(boxes, kps, scores, self.nms_iou, self.max_faces)
        keep = ~spanning_boxes(boxes, scores)
        boxes, kps, scores = boxes[keep], kps[keep], scores[keep]
        return [Detection(box=b, score=float(s), keypoints=k) for b, k, s in zip(boxes, kps, scores, strict=True)]

    def _left_to_a_finer_pass(self, boxes: np.ndarray, sides: np.ndarray, finest_wanted: float,
                              finest_ran: bool) -> np.ndarray:
        """Detections that a coarse window saw under MIN_MODEL_FACE_PX, where a finer pass is the one to trust.

        - A finer window of this frame saw the face too: weighted NMS would average the two, and the coarse
          one's box and keypoints are the worse (a 10-15 px face has its eye points off by up to 20% of the
          eye distance; a coarse window also draws one box around two small neighbouring faces).
        - The finest pass does not run on this frame (TileSchedule round_robin): the face is left to the frame
          on which it runs, and the tracker carries it in between. Boxes alternating between a coarse and a
          fine estimate look like motion to the tracker's velocity and split tracks.
        A face that only a coarse window found, on a frame where the finest pass ran and missed it, is kept.
        """
        drop = np.zeros(len(boxes), bool)
        if not len(boxes):
            return drop
        model_px = (boxes[:, 2] - boxes[:, 0]) * self.input_size / np.maximum(sides, 1.0)
        for i in np.flatnonzero((model_px < MIN_MODEL_FACE_PX) & (sides > finest_wanted * 1.01)):
            finer = sides < sides[i] / 1.01
            if not finest_ran or (finer.any() and iou_one_to_many(boxes[i], boxes[finer]).max() > self.nms_iou):
                drop[i] = True
        return drop

    @staticmethod
    def _inside_tile(boxes: np.ndarray, tile: Tile, w: int, h: int, margin: float = 2.0) -> np.ndarray:
        left = (boxes[:, 0] > tile.x + margin) | (tile.x == 0)
        top = (boxes[:, 1] > tile.y + margin) | (tile.y == 0)
        right = (boxes[:, 2] < tile.x + tile.side - margin) | (tile.x + tile.side >= w)
        bottom = (boxes[:, 3] < tile.y + tile.side - margin) | (tile.y + tile.side >= h)
        return left & top & right & bottom


class TileSchedule:
    """Which tiling passes run on the next frame of a live stream.

    `every_frame`: all of them, always. `round_robin`: the whole-frame pass (grid 1, the large and near
    faces) on every frame, and the finer grids taking turns, one per frame. With tiles [1, 2, 3] a 1080p
    frame then costs 5 or 10 detector windows instead of 14, so a device that cannot keep up at camera
    rate does; a face only a fine grid finds is looked for every other frame, and the tracker carries its
    track across the frame in between (tracker.max_missed_frames). Stills always use every pass.

    `tiles` is a list of grids, or a function of the frame's size (`FaceDetector.grids_for`, for "auto"):
    then `next` needs the frame's width and height.
    """

    def __init__(self, tiles: Sequence[int] | Callable[[int, int], Sequence[int]], mode: str = "every_frame"):
        if mode not in ("every_frame", "round_robin"):
            raise ValueError(f"tile schedule must be every_frame or round_robin, not {mode!r}")
        if isinstance(tiles, str):
            raise ValueError(f"tiles {tiles!r}: pass the grids, or the detector (TileSchedule.for_detector)")
        self._resolve = tiles if callable(tiles) else None
        self.tiles: tuple[int, ...] = () if callable(tiles) else tuple(tiles)
        self.mode = mode
        self._turn = 0

    @classmethod
    def for_detector(cls, detector: FaceDetector, mode: str = "every_frame") -> TileSchedule:
        return cls(detector.grids_for if isinstance(detector.tiles, str) else detector.tiles, mode)

    def _split(self, tiles: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(g for g in tiles if g == 1), tuple(g for g in tiles if g != 1)

    @property
    def period(self) -> int:
        """Frames until every pass has run once (for "auto": of the last frame size seen)."""
        return max(1, len(self._split(self.tiles)[1])) if self.mode == "round_robin" else 1

    def next(self, width: int = 0, height: int = 0) -> tuple[int, ...]:
        if self._resolve is not None:
            if width <= 0 or height <= 0:
                raise ValueError("an automatic tile schedule needs the frame's width and height")
            self.tiles = tuple(self._resolve(width, height))
        always, rotating = self._split(self.tiles)
        if self.mode == "every_frame" or len(rotating) <= 1:
            return self.tiles
        grid = rotating[self._turn % len(rotating)]
        self._turn += 1
        return (*always, grid)
