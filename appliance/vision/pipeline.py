"""The vision pipeline: frame -> faces with quality verdicts -> aligned crops -> embeddings.

Everything here lives in memory only: no crop, embedding or face is written anywhere by this module.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from appliance.config import Config, QualityConfig
from appliance.runtime.interpreter import RuntimeOptions
from appliance.runtime.loader import Model, load_model
from appliance.runtime.manifest import ModelSpec, load_manifest
from appliance.vision.align import align, align_on_keypoints
from appliance.vision.detector import FaceDetector
from appliance.vision.embedder import FaceEmbedder
from appliance.vision.landmarks import MeshLandmarker
from appliance.vision.quality import assess
from appliance.vision.types import AlignedFace, Face

# A second face at least this big (relative to the largest) makes an enrolment photo ambiguous.
SEVERAL_FACES_RATIO = 0.4
# Portraits (reference photos, LFW): the face fills much of the picture, which BlazeFace full range
# under-scores. One whole-picture pass with a wide border; a lower score is tried only if nothing is found.
PORTRAIT_MARGIN = 0.5
PORTRAIT_RETRY_SCORE = 0.3


class StageTimings:
    """Milliseconds per stage call, for `make bench` (kept small: a bounded list per stage)."""

    def __init__(self, keep: int = 10000):
        self.keep = keep
        self.ms: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            samples = self.ms[name]
            if len(samples) < self.keep:
                samples.append((time.perf_counter() - t0) * 1000.0)

    def clear(self) -> None:
        self.ms.clear()


@dataclass(frozen=True)
class Enrolment:
    """The result of enrolling one reference photo: the embedding, or the reason it was refused."""

    ok: bool
    reason: str  # "ok", "no_face", "several_faces", "too_small", "blurred", "pose", "low_score", "no_landmarks"
    embedding: np.ndarray | None = None
    aligned: AlignedFace | None = None
    face: Face | None = None


class FacePipeline:
    RELOADABLE = frozenset(QualityConfig.model_fields)  # the quality gate reads [quality] per frame

    def update_config(self, quality: QualityConfig) -> None:
        """A new [quality] gate; call between frames from the thread that calls detect()."""
        self.config = self.config.model_copy(update={"quality": quality})

    def __init__(self, config: Config, detector: FaceDetector, landmarker: MeshLandmarker | None,
                 embedder: FaceEmbedder, embedder_spec: ModelSpec, detector_spec: ModelSpec):
        self.config = config
        self.detector = detector
        self.landmarker = landmarker
        self.embedder = embedder
        self.embedder_spec = embedder_spec
        self.detector_spec = detector_spec
        self.timings = StageTimings()
        # Same model, other settings: one whole-picture pass with a wide border, and its low-score retry.
        self.portrait_detectors = [
            FaceDetector(detector.model, score, detector.nms_iou, (1,), 0.0, detector.max_faces, PORTRAIT_MARGIN)
            for score in (detector.score_threshold, PORTRAIT_RETRY_SCORE)
        ]

    @classmethod
    def from_config(cls, config: Config) -> FacePipeline:
        manifest = load_manifest(config.models.dir)
        options = RuntimeOptions(threads=config.runtime.threads, xnnpack=config.runtime.xnnpack)
        root = manifest.path.parent

        def load(model_id: str, role: str) -> tuple[Model, ModelSpec]:
            spec = manifest.get(model_id, role)
            return load_model(spec, root, options), spec

        det_model, det_spec = load(config.models.detector, "detector")
        d = config.detector
        detector = FaceDetector(det_model, d.score_threshold, d.nms_iou, d.tiles, d.tile_overlap, d.max_faces,
                                d.whole_frame_margin, d.min_face_px)
        landmarker = None
        if config.models.landmarks:
            landmarker = MeshLandmarker(load(config.models.landmarks, "landmarks")[0])
        emb_model, emb_spec = load(config.models.embedder, "embedder")
        mean, std = emb_spec.input.get("mean"), emb_spec.input.get("std")
        embedder = FaceEmbedder(emb_model, *([mean, std] if mean and std else []), flip=config.models.embed_flip,
                                layout=emb_spec.layout)
        return cls(config, detector, landmarker, embedder, emb_spec, det_spec)

    @property
    def model_id(self) -> str:
        return self.embedder_spec.id

    def detect(self, frame_bgr: np.ndarray, portrait: bool = False,
               grids: Sequence[int] | None = None) -> list[Face]:
        """Detections with their quality verdicts, largest first. Nothing is embedded yet.

        `portrait` is for still photos of one or a few people (enrolment, evaluation), not for the street.
        `grids` limits a live frame to some of the tiling passes (TileSchedule); None runs them all.
        """
        with self.timings.stage("detect"):
            if portrait:
                detections = []
                for portrait_detector in self.portrait_detectors:
                    detections = portrait_detector.detect(frame_bgr)
                    if detections:
                        break
            else:
                detections = self.detector.detect(frame_bgr, grids)
        with self.timings.stage("quality"):
            gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
            faces = [Face(detection=d, quality=assess(gray, d, self.config.quality)) for d in detections]
        faces.sort(key=lambda f: -f.detection.width)
        return faces

    def embed(self, frame_bgr: np.ndarray, face: Face, frame_rgb: np.ndarray | None = None) -> Face:
        """Align (5-point mesh, or detector keypoints as fallback) and embed one face, in place."""
        rgb = frame_rgb if frame_rgb is not None else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        points = None
        if self.landmarker is not None:
            with self.timings.stage("landmarks"):
                points = self.landmarker.five_points(rgb, face.detection)
        with self.timings.stage("align"):
            aligned = align(rgb, points) if points is not None else None
            face.aligned = aligned if aligned is not None else align_on_keypoints(rgb, face.detection)
        with self.timings.stage("embed"):
            face.embedding = self.embedder.embed(face.aligned.image)
        return face

    def process(self, frame_bgr: np.ndarray, gate: bool = True) -> list[Face]:
        """Detect, then embed every face that passes the quality gate (all faces if gate is False)."""
        faces = self.detect(frame_bgr)
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        for face in faces:
            if not gate or (face.quality and face.quality.ok):
                self.embed(frame_bgr, face, rgb)
        return faces

    def enrol(self, image_bgr: np.ndarray) -> Enrolment:
        """Enrol a reference photo: exactly one clear, frontal, sharp face, or a refusal with the reason."""
        faces = self.detect(image_bgr, portrait=True)
        if not faces:
            return Enrolment(False, "no_face")
        if len(faces) > 1 and faces[1].detection.width >= SEVERAL_FACES_RATIO * faces[0].detection.width:
            return Enrolment(False, "several_faces", face=faces[0])
        face = faces[0]
        if face.quality is not None and not face.quality.ok:
            return Enrolment(False, face.quality.reason, face=face)
        self.embed(image_bgr, face)
        return Enrolment(True, "ok", embedding=face.embedding, aligned=face.aligned, face=face)
