"""Synthetic street scenes for tests and the demo: portrait photos of people 'walking' across a background.

Each person is a photo (e.g. an LFW 150x150 crop) pasted onto the background at a size that grows as they
approach, moving across the frame during their own time window. The result is a list of frames in memory,
or a video file. Unlike a slide show of photos, people enter and leave, several are on screen at once,
and their faces are street-sized; so tracks start, end and overlap as they would outside a van.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Walker:
    photo: Path
    start: int  # first frame on screen
    frames: int  # how long on screen
    y: float  # vertical position of the photo's centre, share of frame height
    left_to_right: bool = True
    size: tuple[int, int] = (110, 170)  # photo side in pixels when entering and when leaving


def plan_walkers(photos: Sequence[Path], fps: float, seconds_each: float = 2.5, overlap: float = 0.5,
                 seed: int = 0) -> list[Walker]:
    """People one after another, each on screen `seconds_each`, the next entering before the last has gone."""
    rng = np.random.default_rng(seed)
    frames = max(2, round(seconds_each * fps))
    step = max(1, round(frames * (1 - overlap)))
    return [
        Walker(Path(p), i * step, frames, float(rng.uniform(0.3, 0.7)), bool(i % 2 == 0))
        for i, p in enumerate(photos)
    ]


def render(background: np.ndarray, walkers: Sequence[Walker], size: tuple[int, int]) -> list[np.ndarray]:
    w, h = size
    bg = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    total = max(wk.start + wk.frames for wk in walkers) if walkers else 0
    photos = {wk.photo: cv2.imread(str(wk.photo)) for wk in walkers}
    frames = []
    for f in range(total):
        frame = bg.copy()
        for wk in walkers:
            t = (f - wk.start) / max(1, wk.frames - 1)
            if not 0 <= t <= 1:
                continue
            side = round(wk.size[0] + (wk.size[1] - wk.size[0]) * t)
            tile = cv2.resize(photos[wk.photo], (side, side), interpolation=cv2.INTER_LINEAR)
            x_centre = (0.12 + 0.76 * t) if wk.left_to_right else (0.88 - 0.76 * t)
            x0 = round(x_centre * w - side / 2)
            y0 = round(wk.y * h - side / 2)
            xa, ya = max(0, x0), max(0, y0)
            xb, yb = min(w, x0 + side), min(h, y0 + side)
            frame[ya:yb, xa:xb] = tile[ya - y0 : yb - y0, xa - x0 : xb - x0]
        frames.append(frame)
    return frames


def write_video(frames: Sequence[np.ndarray], out: Path, fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return out
