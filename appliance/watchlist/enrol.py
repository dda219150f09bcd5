"""Enrol subjects' photos with the van's own pipeline: each photo becomes a template or a refusal with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from appliance.watchlist.records import Entry
from appliance.watchlist.subjects import find_photos
from appliance.watchlist.timeutil import parse_time
from appliance.watchlist.validation import metadata_problem

# Why a photo was refused, in words for the person building the list (pipeline reason codes -> text).
PHOTO_REASONS = {
    "no_face": "no face found",
    "several_faces": "several faces in the photo",
    "too_small": "face too small",
    "blurred": "too blurred",
    "pose": "head turned or tilted too far",
    "low_score": "face not clear enough (low detector score)",
    "no_landmarks": "facial landmarks not found",
    "unreadable": "not a readable image",
    "missing": "file not found",
}
REFERENCE_MAX_SIDE = 400
REFERENCE_QUALITY = 90


class Enroller(Protocol):
    """What the builder needs from FacePipeline (tests of pure logic may pass a stand-in)."""

    @property
    def model_id(self) -> str: ...

    def enrol(self, image_bgr: np.ndarray): ...


@dataclass(frozen=True)
class Refusal:
    subject_id: str
    photo: str | None  # file name, or None when the subject itself is refused
    reason: str  # code: a pipeline reason, "missing", "unreadable", or "metadata"
    detail: str

    def __str__(self) -> str:
        where = f" ({self.photo})" if self.photo else ""
        return f"{self.subject_id}{where}: {self.detail}"


def reference_jpeg(image_bgr: np.ndarray) -> bytes:
    """The photo shown to the officer: at most REFERENCE_MAX_SIDE px, re-encoded (drops EXIF and the rest)."""
    h, w = image_bgr.shape[:2]
    scale = min(1.0, REFERENCE_MAX_SIDE / max(h, w))
    if scale < 1.0:
        image_bgr = cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, REFERENCE_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def enrol_subjects(
    subjects: list[dict], photos_dir: Path, pipeline: Enroller, *, now: datetime
) -> tuple[list[Entry], list[Refusal]]:
    """Entries for every subject with acceptable metadata and at least one accepted photo, and every refusal."""
    entries: list[Entry] = []
    refusals: list[Refusal] = []
    for s in subjects:
        meta, sid = s["meta"], s["meta"]["id"]
        problem = metadata_problem(meta)
        if problem is None and parse_time(meta["expires_at"]) <= now:
            problem = f"expired at {meta['expires_at']}"
        if problem:
            refusals.append(Refusal(sid, None, "metadata", problem))
            continue
        paths = find_photos(photos_dir, sid, s["photos"])
        if not paths:
            refusals.append(Refusal(sid, None, "missing", "no enrolment photo"))
            continue
        templates, reference = [], None
        for p in paths:
            if not p.exists():
                refusals.append(Refusal(sid, p.name, "missing", PHOTO_REASONS["missing"]))
                continue
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                refusals.append(Refusal(sid, p.name, "unreadable", PHOTO_REASONS["unreadable"]))
                continue
            result = pipeline.enrol(img)
            if not result.ok:
                refusals.append(Refusal(sid, p.name, result.reason, PHOTO_REASONS.get(result.reason, result.reason)))
                continue
            templates.append(np.asarray(result.embedding, dtype=np.float32))
            if reference is None:
                reference = reference_jpeg(img)
        if templates:
            entries.append(Entry(dict(meta), np.stack(templates), reference))
    return entries, refusals
