"""Run the van's own pipeline over every image of a dataset: one embedding per image (NaN = no face)."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from appliance.evaluation.lfw import Dataset
from appliance.vision.pipeline import FacePipeline
from appliance.vision.types import Face

QUALITY_FIELDS = ("interocular_px", "sharpness", "abs_yaw_deg", "abs_pitch_deg", "detector_score")


@dataclass
class DatasetEmbeddings:
    keys: list[str]
    embeddings: np.ndarray  # (N, D) float32; NaN rows where no face was found
    no_face: list[str] = field(default_factory=list)
    quality_reasons: Counter = field(default_factory=Counter)  # what the live gate would have said
    # per image: interocular px, sharpness, |yaw|, |pitch|, detector score (NaN where no face): the look's
    # quality, against which the score distribution of non-mated looks is measured (evaluation/quality.py)
    quality: np.ndarray | None = None
    # per image: the background-set offset (matching/normalise.py) subtracted from every score it takes
    # part in; zeros when the model's scores are raw cosines
    offsets: np.ndarray | None = None

    def offset(self) -> np.ndarray:
        return self.offsets if self.offsets is not None else np.zeros(len(self.keys), np.float32)


def central_face(faces: list[Face], width: int, height: int) -> Face | None:
    """The labelled face of an LFW-style image is the one nearest the centre (ties go to the larger)."""
    if not faces:
        return None
    centre = np.array([width / 2, height / 2])

    def cost(f: Face) -> float:
        box = f.detection.box
        d = np.linalg.norm((box[:2] + box[2:]) / 2 - centre)
        return float(d / max(width, height) - 0.1 * f.detection.width / max(width, height))

    return min(faces, key=cost)


def embed_dataset(pipe: FacePipeline, dataset: Dataset, progress: bool | None = None) -> DatasetEmbeddings:
    progress = sys.stderr.isatty() if progress is None else progress
    dim = pipe.embedder.size
    out = DatasetEmbeddings(dataset.images, np.full((len(dataset.images), dim), np.nan, np.float32),
                            quality=np.full((len(dataset.images), len(QUALITY_FIELDS)), np.nan, np.float32))
    for i, key in enumerate(tqdm(dataset.images, desc="embedding", unit="img", disable=not progress)):
        image = cv2.imread(str(dataset.path(key)))
        if image is None:
            out.no_face.append(key)
            continue
        face = central_face(pipe.detect(image, portrait=True), image.shape[1], image.shape[0])
        if face is None:
            out.no_face.append(key)
            continue
        out.quality_reasons[face.quality.reason if face.quality else "unknown"] += 1
        if face.quality is not None:
            q = face.quality
            out.quality[i] = (q.interocular_px, q.sharpness, abs(q.yaw_deg), abs(q.pitch_deg), q.score)
        pipe.embed(image, face)
        out.embeddings[i] = face.embedding
    return out
