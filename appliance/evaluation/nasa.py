"""Reference photo against live view (`appliance eval --nasa DIR`).

Each `<person>/portrait.jpg` (an official, custody-style photo) is enrolled as the van enrols a watchlist
photo, among the LFW open-set gallery as distractors. Each `<person>/iss_photo_*.jpg` (candid, in orbit)
is a probe, processed as the van processes a street frame: live detection (not the portrait pass), the
largest face, the quality gate. For comparison each probe is also run with the portrait pass, as LFW is.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from appliance.errors import ApplianceError
from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import open_set_split
from appliance.matching.normalise import BackgroundNormaliser
from appliance.vision.pipeline import FacePipeline


def _gallery(pipe: FacePipeline, nasa_dir: Path, dataset: Dataset, emb: DatasetEmbeddings):
    gallery, _, _ = open_set_split(dataset)
    ids = [dataset.identity[i] for i in gallery]
    rows = [emb.embeddings[i] for i in gallery]
    enrolment = {}
    for person in sorted(p for p in nasa_dir.iterdir() if p.is_dir()):
        image = cv2.imread(str(person / "portrait.jpg"))
        if image is None:
            enrolment[person.name] = "no portrait.jpg"
            continue
        e = pipe.enrol(image)
        enrolment[person.name] = e.reason
        if e.ok:
            ids.append(f"nasa:{person.name}")
            rows.append(e.embedding)
    if not any(i.startswith("nasa:") for i in ids):
        raise ApplianceError(f"--nasa: no <person>/portrait.jpg in {nasa_dir} could be enrolled")
    keep = [k for k, r in enumerate(rows) if not np.isnan(r).any()]
    return np.array([ids[k] for k in keep]), np.stack([rows[k] for k in keep]).astype(np.float32), enrolment


def search(gallery_ids: np.ndarray, gallery: np.ndarray, embedding: np.ndarray, truth: str,
           normaliser: BackgroundNormaliser | None = None) -> dict:
    """Rank and score of the true subject, and the top-1 subject, among subjects ranked by best score
    (the adjusted score when the model's scores are normalised)."""
    scores = gallery @ embedding
    if normaliser is not None:
        scores = scores - normaliser.offsets(gallery) - normaliser.offsets(embedding)[0]
    order = np.argsort(-scores)
    ranked = list(dict.fromkeys(gallery_ids[order]))  # subjects by their best template
    best = {s: float(scores[gallery_ids == s].max()) for s in (ranked[0], truth) if s in set(gallery_ids)}
    top = ranked[0]
    return {
        "rank": ranked.index(truth) + 1 if truth in ranked else None,
        "score": round(best[truth], 4) if truth in best else None,
        "top1": top.removeprefix("nasa:") if top.startswith("nasa:") else "(LFW distractor)",
        "top1_score": round(best[top], 4),
    }


def _probe(pipe: FacePipeline, image: np.ndarray, portrait: bool, gallery_ids, gallery, truth, threshold,
           normaliser: BackgroundNormaliser | None = None) -> dict:
    faces = pipe.detect(image, portrait=portrait)
    if not faces:
        return {"face": False, "gate": "no_face", "alert": "none"}
    face = faces[0]  # largest first: the astronaut is the subject of the photo
    gate = face.quality.reason if face.quality else "unknown"
    pipe.embed(image, face)
    out = {"face": True, "gate": gate, "interocular_px": round(float(face.detection.interocular), 1)}
    out.update(search(gallery_ids, gallery, face.embedding, truth, normaliser))
    if gate != "ok":
        out["alert"] = "refused by the quality gate"
    elif out["top1_score"] < threshold:
        out["alert"] = "none"
    else:
        out["alert"] = "true" if out["rank"] == 1 else "false"
    return out


def evaluate_nasa(pipe: FacePipeline, nasa_dir: Path, dataset: Dataset, emb: DatasetEmbeddings,
                  threshold: float, normaliser: BackgroundNormaliser | None = None) -> dict:
    gallery_ids, gallery, enrolment = _gallery(pipe, nasa_dir, dataset, emb)
    probes = []
    for person in sorted(p for p in nasa_dir.iterdir() if p.is_dir()):
        truth = f"nasa:{person.name}"
        for photo in sorted(person.glob("iss_photo_*.jpg")):
            image = cv2.imread(str(photo))
            row = {"probe": f"{person.name}/{photo.name}", "enrolled": enrolment.get(person.name) == "ok"}
            if image is None:
                row["live"] = row["portrait_mode"] = {"face": False, "gate": "unreadable", "alert": "none"}
            else:
                row["live"] = _probe(pipe, image, False, gallery_ids, gallery, truth, threshold, normaliser)
                row["portrait_mode"] = _probe(pipe, image, True, gallery_ids, gallery, truth, threshold, normaliser)
            probes.append(row)
    live = [p["live"] for p in probes]
    summary = {
        "probes": len(probes),
        "gate_passed": sum(p["gate"] == "ok" for p in live),
        "rank1": sum(p.get("rank") == 1 for p in live),
        "true_alerts": sum(p["alert"] == "true" for p in live),
        "false_alerts": sum(p["alert"] == "false" for p in live),
        "rank1_portrait_mode": sum(p["portrait_mode"].get("rank") == 1 for p in probes),
    }
    return {
        "threshold": round(threshold, 4),
        "gallery": {"subjects": len(set(gallery_ids)), "nasa_enrolled": sum(r == "ok" for r in enrolment.values()),
                    "lfw_distractors": int(sum(not s.startswith("nasa:") for s in set(gallery_ids)))},
        "enrolment": enrolment,
        "summary": summary,
        "probes": probes,
    }
