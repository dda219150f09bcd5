"""Detector cost and yield per tiling, on the crowd photos as they are and letterboxed into 720p and 1080p
frames (docs/detection.md, "Cost per frame"): detector windows, median ms per frame, boxes and gate passes.

    python -m appliance.devtools.detector_cost 1,2,3 auto      # each argument is a detector.tiles setting

The settings run interleaved (image by image, run by run) so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from appliance.config import load_config
from appliance.paths import shared_dir
from appliance.vision.detector import tile_grid
from appliance.vision.pipeline import FacePipeline


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    s = min(width / image.shape[1], height / image.shape[0])
    size = (round(image.shape[1] * s), round(image.shape[0] * s))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    frame[y : y + size[1], x : x + size[0]] = resized
    return frame


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tiles", nargs="+", help="detector.tiles settings: auto, or grids such as 1,2,3")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    settings = {t: "auto" if t == "auto" else [int(g) for g in t.split(",")] for t in args.tiles}
    pipes = {t: FacePipeline.from_config(load_config(overrides={"detector.tiles": v})) for t, v in settings.items()}
    photos = [cv2.imread(str(f)) for f in sorted((shared_dir() / "data" / "crowd").glob("*.jpg"))]
    sets = {"photos": photos, "1280x720": [letterbox(i, 1280, 720) for i in photos],
            "1920x1080": [letterbox(i, 1920, 1080) for i in photos]}
    print("| frames | tiles | windows per frame | median ms per frame | boxes | `ok` |\n|---|---|---|---:|---:|---:|")
    for name, images in sets.items():
        ms: dict[str, list[list[float]]] = {t: [[] for _ in images] for t in pipes}
        for _ in range(args.runs):
            for i, image in enumerate(images):
                for t, pipe in pipes.items():
                    t0 = time.perf_counter()
                    pipe.detector.detect(image)
                    ms[t][i].append((time.perf_counter() - t0) * 1e3)
        for t, pipe in pipes.items():
            windows = sorted({sum(len(tile_grid(im.shape[1], im.shape[0], g, pipe.detector.tile_overlap,
                                                pipe.detector.whole_frame_margin))
                                  for g in pipe.detector.grids_for(im.shape[1], im.shape[0])) for im in images})
            faces = [pipe.detect(im) for im in images]
            median = statistics.median(statistics.median(v) for v in ms[t])
            span = f"{windows[0]}–{windows[-1]}" if len(windows) > 1 else str(windows[0])
            print(f"| {name} | {t} | {span} | {median:.0f} | {sum(map(len, faces))} | "
                  f"{sum(f.quality.ok for fs in faces for f in fs)} |", flush=True)


if __name__ == "__main__":
    main()
