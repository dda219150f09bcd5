"""Alignment and embedding on real faces with the real int8 and fp32 MobileFaceNet models."""

import cv2
import numpy as np
import pytest

from appliance.config import load_config
from appliance.vision.pipeline import FacePipeline


def embed(pipe, path):
    image = cv2.imread(str(path))
    face = pipe.detect(image, portrait=True)[0]
    pipe.embed(image, face)
    return face


def test_embeddings_are_l2_normalised_and_aligned_to_112(pipeline, lfw_dir):
    face = embed(pipeline, lfw_dir / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    assert face.aligned.image.shape == (112, 112, 3) and face.aligned.method == "mesh"
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert abs(np.linalg.norm(face.embedding) - 1) < 1e-5


def test_same_person_scores_higher_than_different_people(pipeline, lfw_dir):
    # First 100 "same" and 100 "different" pairs of fold 1 of pairs.txt.
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()[1:601]
    same, diff = [], []
    for line in lines[:100] + lines[300:400]:
        parts = line.split()
        if len(parts) == 3:
            a, b = (lfw_dir / parts[0] / f"{parts[0]}_{int(n):04d}.jpg" for n in parts[1:])
            same.append(float(embed(pipeline, a).embedding @ embed(pipeline, b).embedding))
        else:
            a = lfw_dir / parts[0] / f"{parts[0]}_{int(parts[1]):04d}.jpg"
            b = lfw_dir / parts[2] / f"{parts[2]}_{int(parts[3]):04d}.jpg"
            diff.append(float(embed(pipeline, a).embedding @ embed(pipeline, b).embedding))
    threshold = pipeline.embedder_spec.calibration.threshold
    assert np.mean(np.array(diff) < threshold) >= 0.99
    assert np.median(same) > threshold > np.median(diff)
    assert np.mean(np.array(same) > 0.3327) >= 0.95  # FAR 1e-3 threshold on all LFW pairs


def test_int8_agrees_with_fp32(pipeline, lfw_dir):
    fp32 = FacePipeline.from_config(load_config(overrides={"models.embedder": "mobilefacenet-fp32"}))
    for path in sorted(lfw_dir.glob("B*/*_0001.jpg"))[:10]:
        face = embed(pipeline, path)
        ref = fp32.embedder.embed(face.aligned.image)
        assert float(face.embedding @ ref) > 0.95, path.name


def test_xnnpack_off_gives_the_same_faces(lfw_dir):
    on = FacePipeline.from_config(load_config(overrides={"runtime.xnnpack": True, "runtime.threads": 1}))
    off = FacePipeline.from_config(load_config(overrides={"runtime.xnnpack": False, "runtime.threads": 1}))
    path = lfw_dir / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    assert float(embed(on, path).embedding @ embed(off, path).embedding) > 0.98


def test_mesh_alignment_falls_back_to_keypoints(lfw_dir):
    pipe = FacePipeline.from_config(load_config(overrides={"models.landmarks": None}))
    face = embed(pipe, lfw_dir / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    assert face.aligned.method == "keypoints" and face.embedding is not None


@pytest.mark.parametrize("reason_image", ["several_faces", "no_face"])
def test_enrolment_refusals(pipeline, crowd_dir, reason_image):
    if reason_image == "several_faces":
        image = cv2.imread(str(crowd_dir / "13.jpg"))
    else:
        image = np.full((480, 640, 3), 127, np.uint8)
    result = pipeline.enrol(image)
    assert not result.ok and result.reason == reason_image and result.embedding is None


def test_enrolment_refuses_blur_and_small(pipeline, nasa_dir):
    image = cv2.imread(str(nasa_dir / "kate_rubins" / "portrait.jpg"))
    assert pipeline.enrol(image).ok
    blurred = cv2.GaussianBlur(image, (0, 0), 8)
    assert pipeline.enrol(blurred).reason == "blurred"
    tiny = cv2.resize(image, (120, 150), interpolation=cv2.INTER_AREA)  # eyes ~13 px apart
    assert pipeline.enrol(tiny).reason == "too_small"
