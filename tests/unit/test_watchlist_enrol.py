"""Enrolment logic: each photo becomes a template or a refusal with the pipeline's reason in words.
(The real pipeline on real photos is exercised in tests/integration/test_watchlist_cli.py.)"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from appliance.watchlist.enrol import PHOTO_REASONS, REFERENCE_MAX_SIDE, enrol_subjects, reference_jpeg
from appliance.watchlist.timeutil import utcnow


@dataclass
class Result:
    ok: bool
    reason: str
    embedding: np.ndarray | None = None


class ScriptedPipeline:
    """Answers by the photo's pixel value: 0 -> ok, otherwise a refusal reason (a stand-in for pure logic)."""

    model_id = "fake"
    REASONS = ("ok", "no_face", "several_faces", "too_small", "blurred", "pose")

    def enrol(self, img):
        reason = self.REASONS[int(img[0, 0, 0]) // 10]
        if reason != "ok":
            return Result(False, reason)
        v = np.ones(128, np.float32) + img[1, 1, 0]
        return Result(True, "ok", v / np.linalg.norm(v))


def meta(sid, **kw):
    m = {"id": sid, "display_name": "X", "category": "wanted", "legal_basis": "b", "image_source": "c",
         "expires_at": "2099-01-01T00:00:00Z"}
    m.update(kw)
    return m


@pytest.fixture
def photos(tmp_path):
    for i, reason in enumerate(ScriptedPipeline.REASONS):
        cv2.imwrite(str(tmp_path / f"{reason}.png"), np.full((20, 30, 3), i * 10, np.uint8))
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    return tmp_path


def test_each_reason_reported(photos):
    subjects = [{"meta": meta(f"S-{r}"), "photos": [f"{r}.png"]} for r in ScriptedPipeline.REASONS]
    entries, refusals = enrol_subjects(subjects, photos, ScriptedPipeline(), now=utcnow())
    assert [e.id for e in entries] == ["S-ok"]
    got = {r.subject_id: r for r in refusals}
    for reason in ScriptedPipeline.REASONS[1:]:
        r = got[f"S-{reason}"]
        assert r.reason == reason and r.detail == PHOTO_REASONS[reason] and r.photo == f"{reason}.png"
    assert "S-pose (pose.png): head turned" in str(got["S-pose"])


def test_several_photos_some_refused(photos):
    subjects = [{"meta": meta("S-1"), "photos": ["ok.png", "blurred.png", "ok.png", "missing.png", "junk.jpg"]}]
    entries, refusals = enrol_subjects(subjects, photos, ScriptedPipeline(), now=utcnow())
    assert len(entries) == 1 and entries[0].templates.shape == (2, 128)
    assert entries[0].photo_jpeg.startswith(b"\xff\xd8\xff")
    assert sorted(r.reason for r in refusals) == ["blurred", "missing", "unreadable"]


def test_metadata_refused_before_photos(photos):
    subjects = [
        {"meta": meta("S-1", legal_basis=None), "photos": ["ok.png"]},
        {"meta": meta("S-2", expires_at="2001-01-01T00:00:00Z"), "photos": ["ok.png"]},
        {"meta": meta("S-3"), "photos": []},
    ]
    entries, refusals = enrol_subjects(subjects, photos, ScriptedPipeline(), now=utcnow())
    assert entries == []
    assert [(r.subject_id, r.reason) for r in refusals] == [("S-1", "metadata"), ("S-2", "metadata"),
                                                            ("S-3", "missing")]
    assert refusals[0].detail == "missing legal_basis" and "expired" in refusals[1].detail


def test_reference_jpeg_is_bounded_and_reencoded():
    big = np.random.default_rng(0).integers(0, 255, (1200, 900, 3), dtype=np.uint8)
    jpg = reference_jpeg(big)
    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert max(img.shape[:2]) == REFERENCE_MAX_SIDE and jpg.startswith(b"\xff\xd8\xff")
    assert reference_jpeg(big) == jpg  # deterministic: an unchanged subject keeps its digest in a delta
