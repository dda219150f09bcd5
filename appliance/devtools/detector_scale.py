"""How often BlazeFace finds a face, by the face's size in model-input pixels (docs/detection.md, issue 15).

Reference faces are those found with a score above 0.7 by fine grids (6×6 and 8×8, where a face is several
times larger in the model's input than in a coarse pass). Each coarser grid (2×2 to 5×5) is then run alone, and
each reference face counts as found there when a detection overlaps it (IoU > 0.3). Binned by the face's width
in that grid's model input. The reference is biased towards faces the model finds easily when big enough, so
this measures the effect of size alone.

    python -m appliance.devtools.detector_scale [PHOTO ...]   # default: crowd photos 1, 6, 17 and 26
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from appliance.paths import shared_dir
from appliance.runtime.loader import load_model
from appliance.runtime.manifest import load_manifest
from appliance.vision.detector import FaceDetector, iou_one_to_many, window_side

BINS = (6, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 40, 48, 64)


def measure(photos: list[Path]) -> list[tuple[str, int, int]]:
    model = load_model(load_manifest().get("blazeface-full"))
    hits = np.zeros(len(BINS) + 1, int)
    total = np.zeros(len(BINS) + 1, int)
    for path in photos:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        reference = FaceDetector(model, 0.6, 0.3, (6, 8), 0.25, 1000, 0.25).detect(image)
        ref = np.array([r.box for r in reference if r.score > 0.7]).reshape(-1, 4)
        for grid in (2, 3, 4, 5):
            side = window_side(w, h, grid, 0.25)
            found = FaceDetector(model, 0.5, 0.3, (grid,), 0.25, 1000, 0.25).detect(image)
            boxes = np.array([d.box for d in found]).reshape(-1, 4)
            for box in ref:
                k = int(np.searchsorted(BINS, (box[2] - box[0]) * model.inputs[0].shape[1] / side))
                total[k] += 1
                hits[k] += bool(len(boxes) and iou_one_to_many(box, boxes).max() > 0.3)
    edges = (0, *BINS, 999)
    return [(f"{edges[k]}-{edges[k + 1]}", int(hits[k]), int(total[k])) for k in range(len(total)) if total[k]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photos", nargs="*", type=Path)
    args = p.parse_args()
    crowd = shared_dir() / "data" / "crowd"
    photos = args.photos or [crowd / f"{n}.jpg" for n in (1, 6, 17, 26)]
    print("| face width in model pixels | found | share |\n|---|---:|---:|")
    for label, hit, n in measure(photos):
        print(f"| {label} | {hit} of {n} | {hit / n:.2f} |")


if __name__ == "__main__":
    main()
