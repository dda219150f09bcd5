"""Build an embedder's background set: every face the live detector finds in a folder of photos of people
who are never on a watchlist, embedded by the van's own pipeline (matching/normalise.py uses it).

Every face is kept, small and blurred ones included: the background set stands for the faces a street
camera sees, and the hub faces it must recognise are mostly poor looks (measured: all 277 faces of the
crowd photos normalise better than the 96 that pass the quality gate, docs/accuracy.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from appliance.errors import ApplianceError
from appliance.runtime.background_build import build_record_path
from appliance.runtime.cpu import cpu_simd
from appliance.runtime.manifest import sha256_of
from appliance.runtime.types import BackgroundBuild
from appliance.vision.pipeline import FacePipeline

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def photo_files(photos: Path) -> list[Path]:
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if photos.is_dir() else []
    if not files:
        raise ApplianceError(f"background photos: no .jpg/.png photos in {photos}")
    return files


def photos_sha256(photos: Path) -> str:
    """One sha256 over the photos' names and contents, in file-name order: which photos a set was built from."""
    h = hashlib.sha256()
    for path in photo_files(photos):
        h.update(f"{path.name}\0{sha256_of(path)}\n".encode())
    return h.hexdigest()


def write_build_record(background: Path, photos: Path, faces: int, pipeline: str) -> None:
    """Beside a set built here: its sha256, size, the photos, the pipeline that built it (a pipeline_digest) and
    this CPU (read by read_build_record)."""
    record: BackgroundBuild = {"sha256": sha256_of(background), "faces": faces,
                               "photos_sha256": photos_sha256(photos), "pipeline": pipeline, "cpu": cpu_simd()}
    build_record_path(background).write_text(json.dumps(record, indent=1) + "\n")


def embed_background(pipe: FacePipeline, photos: Path) -> np.ndarray:
    """(n, D) float32 embeddings of every face found in the photos, in file-name order (reproducible)."""
    files = photo_files(photos)
    rows: list[np.ndarray] = []
    for path in files:
        image = cv2.imread(str(path))
        if image is None:
            raise ApplianceError(f"background photo {path} cannot be decoded")
        for face in pipe.detect(image):
            pipe.embed(image, face)
            if face.embedding is not None:
                rows.append(face.embedding)
    if not rows:
        raise ApplianceError(f"background photos in {photos}: no face found")
    return np.ascontiguousarray(np.stack(rows).astype(np.float32))
