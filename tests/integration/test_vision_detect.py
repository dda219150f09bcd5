"""Detection on real images with the real BlazeFace model, and the `appliance detect` CLI contract."""

import json
import subprocess
import sys

import cv2
import numpy as np

from appliance.config import load_config
from appliance.vision.pipeline import FacePipeline


def appliance(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, cwd=cwd)


def test_one_face_per_lfw_portrait(pipeline, lfw_dir):
    images = sorted(lfw_dir.glob("A*/*_0001.jpg"))[:40]
    found = 0
    for path in images:
        faces = pipeline.detect(cv2.imread(str(path)), portrait=True)
        assert faces, f"no face in {path.name}"
        box = faces[0].detection.box
        centre = (box[:2] + box[2:]) / 2
        found += bool(np.all(np.abs(centre - 75) < 30))  # LFW crops are centred on the face
    assert found >= 0.95 * len(images)


def test_keypoints_are_inside_their_box(pipeline, nasa_dir):
    faces = pipeline.detect(cv2.imread(str(nasa_dir / "kate_rubins" / "portrait.jpg")))
    assert len(faces) == 1
    d = faces[0].detection
    x1, y1, x2, y2 = d.box
    for x, y in d.keypoints[:4]:  # eyes, nose, mouth (ears may sit on the edge)
        assert x1 <= x <= x2 and y1 <= y <= y2
    assert d.keypoints[0][0] < d.keypoints[1][0]  # the subject's right eye is on the image's left


def test_tiling_finds_small_faces_in_a_group_photo(crowd_dir):
    image = cv2.imread(str(crowd_dir / "26.jpg"))  # a group photo of about 80 people, faces ~20-30 px
    whole = FacePipeline.from_config(load_config(overrides={"detector.tiles": [1]})).detector.detect(image)
    tiled = FacePipeline.from_config(load_config(overrides={"detector.tiles": [1, 2, 4, 6]})).detector.detect(image)
    assert len(tiled) >= 60, len(tiled)
    assert len(tiled) >= 2 * len(whole)


def test_detect_cli_json_lines_and_annotations(tmp_path, crowd_dir, nasa_dir):
    images = [str(crowd_dir / "13.jpg"), str(nasa_dir / "peggy_whitson" / "portrait.jpg")]
    r = appliance("detect", *images, "--json", "--annotate", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["image"] for rec in lines] == images
    for rec in lines:
        assert rec["faces"], rec
        for face in rec["faces"]:
            assert len(face["box"]) == 4 and 0 < face["score"] <= 1
            assert len(face["landmarks"]) == 6 and all(len(p) == 2 for p in face["landmarks"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["13.jpg", "portrait.jpg"]


def test_detect_cli_bad_image_is_one_clear_line(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    r = appliance("detect", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("appliance detect: error: image")
    assert "Traceback" not in r.stderr
