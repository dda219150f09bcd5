"""Build a replay video from still photos, moving like a street camera would see people.

Each photo gets an equal share of the clip. Within its share the view pans slowly across it and zooms
in or out (log-linear, eased), so faces move, change scale, and at the far end become small: the case a
live camera meets and a still photo does not. Speeds are bounded like a street's (MAX_ZOOM_PER_S,
MAX_PAN_PER_S), so a short share moves little. Deterministic for a given seed.

    python -m appliance.devtools.make_clip --out clip.mp4 --size 1280x720 --seconds 10 --fps 15 \
        ../shared/data/crowd/*.jpg ../shared/data/nasa/*/portrait.jpg

The benchmark and the demo call `make_clip()` directly.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from appliance.errors import ApplianceError

BACKGROUND = (48, 44, 40)  # BGR, a dull street grey where a zoomed-out photo does not fill the frame
ZOOM_RANGE = (0.3, 1.8)  # 1.0 = the photo just fits the frame; 0.3 makes its faces small, 1.8 close
# Motion a street camera sees: a walker approaching grows by at most ~1.5x per second, and crosses the
# view in several seconds. Faster motion than this is not a test of tracking, it is a slide show.
MAX_ZOOM_PER_S = 1.5
MAX_PAN_PER_S = 0.12  # share of the frame width per second
MIN_SIDE = 16


@dataclass(frozen=True)
class Segment:
    """Which photo is on screen for which frames, and how the view moves (for the demo and tests)."""

    image: str
    first_frame: int
    last_frame: int  # inclusive
    zoom_start: float  # 1.0 = the whole photo just fits the frame
    zoom_end: float
    fit: float  # photo pixels -> frame pixels at zoom 1
    centre_start: tuple[float, float]  # photo point at the frame's centre, first frame
    centre_end: tuple[float, float]

    def view(self, frame: int) -> tuple[float, np.ndarray]:
        """(scale photo->frame, photo point at the frame centre) for a frame of this segment."""
        count = self.last_frame - self.first_frame + 1
        t = _ease((frame - self.first_frame) / max(1, count - 1))
        zoom = self.zoom_start * (self.zoom_end / self.zoom_start) ** t
        c0, c1 = np.array(self.centre_start), np.array(self.centre_end)
        return self.fit * zoom, c0 + (c1 - c0) * t


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    segments: tuple[Segment, ...]

    def segment_at(self, frame: int) -> Segment:
        for seg in self.segments:
            if seg.first_frame <= frame <= seg.last_frame:
                return seg
        raise IndexError(f"frame {frame} is not in the clip ({self.frames} frames)")

    def to_photo(self, frame: int, points: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates (..., 2) back to the photo's: ground truth for tracking tests."""
        scale, centre = self.segment_at(frame).view(frame)
        half = np.array([self.width / 2, self.height / 2])
        return (np.asarray(points, np.float64) - half) / scale + centre


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ApplianceError(f"size '{text}' is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < MIN_SIDE or h < MIN_SIDE or w > 7680 or h > 4320:
        raise ApplianceError(f"size '{text}' is out of range ({MIN_SIDE}..7680 x {MIN_SIDE}..4320)")
    return w, h


def _pyramid(image: np.ndarray) -> list[np.ndarray]:
    """The photo at 1, 1/2, 1/4 ... so each frame downsamples by at most 2x (no aliasing shimmer)."""
    levels = [image]
    while min(levels[-1].shape[:2]) >= 2 * MIN_SIDE:
        h, w = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return levels


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)  # slow start and stop, like a walker or a camera operator


def _render(levels: list[np.ndarray], scale: float, centre: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame showing the photo at `scale` with image point `centre` at the frame's centre."""
    k = 0
    while scale * 2 ** (k + 1) <= 1.0 and k + 1 < len(levels):
        k += 1
    level = levels[k]
    r = scale * 2**k  # residual scale on this level, in (0.5, 1] when shrinking
    cx, cy = centre / 2**k
    w, h = size
    m = np.array([[r, 0.0, w / 2 - r * cx], [0.0, r, h / 2 - r * cy]], np.float64)
    return cv2.warpAffine(level, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=BACKGROUND)


def _motion(rng: np.random.Generator, photo: tuple[int, int], fit: float, frame_w: int, seconds: float):
    """Start and end zoom and centre for one photo's segment, within street-like speeds."""
    lo, hi = np.log(ZOOM_RANGE[0]), np.log(ZOOM_RANGE[1])
    z0 = float(np.exp(rng.uniform(lo, hi)))
    change = np.log(MAX_ZOOM_PER_S) * seconds * rng.uniform(0.5, 1.0)
    direction = 1.0 if rng.random() < 0.5 else -1.0  # approaching or walking away
    z1 = float(np.exp(np.clip(np.log(z0) + direction * change, lo, hi)))
    if abs(np.log(z1 / z0)) < 0.5 * change:  # ran into the range's end: go the other way instead
        z1 = float(np.exp(np.clip(np.log(z0) - direction * change, lo, hi)))
    size = np.array(photo, np.float64)
    c0 = size * rng.uniform(0.3, 0.7, 2)
    angle = rng.uniform(0, 2 * np.pi)
    travel = MAX_PAN_PER_S * frame_w * seconds * rng.uniform(0.5, 1.0) / (fit * np.sqrt(z0 * z1))
    c1 = np.clip(c0 + travel * np.array([np.cos(angle), np.sin(angle)]), 0.2 * size, 0.8 * size)
    return z0, z1, c0, c1


def make_clip(
    images: Sequence[str | Path],
    out: str | Path,
    size: tuple[int, int] = (1280, 720),
    seconds: float = 10.0,
    fps: float = 15.0,
    *,
    seed: int = 0,
) -> ClipInfo:
    """Write an mp4 (mp4v) of `seconds` at `fps` and `size` (w, h) from `images`; returns what is where."""
    paths = [Path(p) for p in images]
    if not paths:
        raise ApplianceError("no images given")
    if seconds <= 0 or fps <= 0:
        raise ApplianceError("seconds and fps must be positive")
    w, h = size
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ApplianceError(f"size {w}x{h} is too small")
    total = round(seconds * fps)
    if total < len(paths):
        raise ApplianceError(f"{len(paths)} images need at least {len(paths)} frames; {seconds:g} s at {fps:g} fps "
                             f"is {total}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise ApplianceError(f"cannot write video {out} (mp4v encoder unavailable or folder not writable)")
    rng = np.random.default_rng(seed)
    segments = []
    try:
        start = 0
        for i, path in enumerate(paths):
            count = total // len(paths) + (1 if i < total % len(paths) else 0)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ApplianceError(f"cannot read image {path}")
            ih, iw = image.shape[:2]
            fit = min(w / iw, h / ih)
            z0, z1, c0, c1 = _motion(rng, (iw, ih), fit, w, count / fps)
            levels = _pyramid(image)
            seg = Segment(str(path), start, start + count - 1, float(z0), float(z1), float(fit),
                          (float(c0[0]), float(c0[1])), (float(c1[0]), float(c1[1])))
            for j in range(start, start + count):
                writer.write(_render(levels, *seg.view(j), (w, h)))
            segments.append(seg)
            start += count
    except BaseException:
        writer.release()
        out.unlink(missing_ok=True)  # no half-written clip left behind
        raise
    writer.release()
    return ClipInfo(out, total, w, h, float(fps), tuple(segments))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.devtools.make_clip",
        description="Build a replay video from still photos with slow pan and zoom (faces move, change "
        "scale, some become small), for the benchmark, the demo and replay tests.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photos, shown in the order given")
    parser.add_argument("--out", required=True, type=Path, help="output .mp4 file")
    parser.add_argument("--size", default="1280x720", help="frame size WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="motion seed; same seed, same clip (default 0)")
    args = parser.parse_args(argv)
    try:
        info = make_clip(args.images, args.out, parse_size(args.size), args.seconds, args.fps, seed=args.seed)
    except ApplianceError as e:
        print(f"make_clip: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {info.path}: {info.frames} frames, {info.width}x{info.height} at {info.fps:g} fps, "
          f"{len(info.segments)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
