"""Build an embedder's background set: every face the live detector finds in a folder of photos of people
who are never on a watchlist, embedded by the van's own pipeline (matching/normalise.py uses it).

Every face is kept, small and blurred ones included: the background set stands for the faces a street
camera sees, and the hub faces it must recognise are mostly poor looks (measured: all 277 faces of the
crowd photos normalise better than the 96 that pass the quality gate, docs/accuracy.md).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from appliance.errors import ApplianceError
from appliance.vision.pipeline import FacePipeline

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def embed_background(pipe: FacePipeline, photos: Path) -> np.ndarray:
    """(n, D) float32 embeddings of every face found in the photos, in file-name order (reproducible)."""
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if photos.is_dir() else []
    if not files:
        raise ApplianceError(f"background photos: no .jpg/.png photos in {photos}")
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
