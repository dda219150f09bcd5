"""Replay a folder of images (or a glob, or one image) as a camera: for tests, benchmarks and demos."""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path

import cv2

from appliance.capture.base import Camera, Frame, Pacer
from appliance.errors import CaptureError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def _natural_key(path: Path) -> list:
    # frame_2.jpg before frame_10.jpg, as a person would expect from a numbered folder.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def list_images(spec: str | Path) -> list[Path]:
    """The images a folder, a glob pattern, or a single image names, in natural sort order."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    elif path.is_file():
        files = [path]
    elif glob.has_magic(text):
        files = [Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    else:
        files = []
    return sorted(files, key=_natural_key)


class FolderCamera(Camera):
    """Frames from image files, in sorted order.

    Without `loop` it is finite (`read()` returns None after the last image); with `loop` it starts again.
    With `fps`, frames come at that rate, like a live camera; without it, as fast as they decode.
    An image that cannot be decoded is skipped (logged once by file name).
    """

    def __init__(self, spec: str | Path, *, fps: float | None = None, loop: bool = False, name: str | None = None):
        super().__init__(name or str(spec))
        self.spec = spec
        self.loop = loop
        self.finite = not loop
        self.fps = fps
        self._files: list[Path] | None = None
        self._index = 0
        self._pacer = Pacer(fps) if fps else None
        self._bad: set[Path] = set()

    @property
    def is_open(self) -> bool:
        return self._files is not None

    @property
    def files(self) -> list[Path]:
        return list(self._files or [])

    def open(self) -> None:
        files = list_images(self.spec)
        if not files:
            raise CaptureError(f"{self.name}: no images found (expected .jpg/.png/... files)")
        self._files = files
        self._index = 0
        if self._pacer is not None:
            self._pacer.reset()

    def read(self) -> Frame | None:
        if self._files is None:
            raise CaptureError(f"{self.name}: read before open")
        for _ in range(2 * len(self._files) + 1):  # bounded: a folder of only bad files must not spin
            if self._index >= len(self._files):
                if not self.loop:
                    return None
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                if path not in self._bad:
                    self._bad.add(path)
                    log.warning("%s: cannot decode %s, skipped", self.name, path.name)
                continue
            if self._pacer is not None:
                self._pacer.wait()
            return self._frame(image)
        raise CaptureError(f"{self.name}: none of the images can be decoded")

    def close(self) -> None:
        self._files = None
