"""`appliance identify --gallery DIR IMAGE...`: enrol a folder of Name/*.jpg, then name the faces in images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from appliance.cli.common import add_config_args, config_from_args, read_image
from appliance.errors import ApplianceError
from appliance.matching.gallery import Gallery
from appliance.matching.service import MatchService
from appliance.vision.pipeline import FacePipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("identify", help="match the faces in images against a folder gallery (Name/*.jpg)")
    p.add_argument("--gallery", type=Path, required=True, metavar="DIR", help="one sub-folder of photos per person")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                   help="photos whose faces are searched in the gallery")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.add_argument("--threshold", type=float,
                   help="score threshold on the model's scale (default: the calibrated one; never below the floor)")
    add_config_args(p)
    p.set_defaults(func=run)


def enrol_folder(pipe: FacePipeline, root: Path) -> Gallery:
    """Enrol every photo of every person; refused photos are reported with the reason, then skipped."""
    if not root.is_dir():
        raise ApplianceError(f"gallery folder {root} not found")
    ids, rows = [], []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(f for f in person.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
            result = pipe.enrol(read_image(photo))
            if not result.ok:
                print(f"gallery: {photo}: refused ({result.reason})", file=sys.stderr)
                continue
            ids.append(person.name)
            rows.append(result.embedding)
    if not rows:
        raise ApplianceError(f"gallery folder {root} has no usable photos (expected {root}/Name/*.jpg)")
    return Gallery(ids, np.stack(rows))


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.threshold is not None:
        config.matcher.threshold = args.threshold
    pipe = FacePipeline.from_config(config)
    gallery = enrol_folder(pipe, args.gallery)
    service = MatchService.for_embedder(config.matcher, pipe.embedder_spec, gallery, config.models.dir)
    threshold = service.threshold
    print(f"gallery: {gallery.n_subjects} people, {gallery.n_templates} photos; threshold {threshold:.3f}",
          file=sys.stderr)
    for path in args.images:
        image = read_image(path)
        faces = pipe.process(image, gate=False)
        results = []
        for face in faces:
            match = service.identify(face.embedding) if face.embedding is not None else None
            best = service.matcher.search(face.embedding, 1).candidates(0) if face.embedding is not None else []
            results.append({
                "box": [round(float(v), 1) for v in face.detection.box],
                "match": match.subject_id if match else None,
                "score": round(match.score if match else (best[0].score if best else float("nan")), 4),
                "quality": face.quality.reason if face.quality else None,
            })
        if args.json:
            print(json.dumps({"image": str(path), "threshold": round(threshold, 4), "faces": results}))
        else:
            if not results:
                print(f"{path}: no face")
            for r in results:
                score = f"{r['score']:.3f}"
                verdict = f"{r['match']} (score {score})" if r["match"] else f"no match (best {score})"
                print(f"{path}: face at {r['box']}: {verdict}")
    return 0
