"""`appliance detect IMAGE... [--json] [--annotate DIR]`: find faces in still images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from appliance.cli.common import add_config_args, config_from_args, read_image
from appliance.vision.pipeline import FacePipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces in images; one JSON line per image")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos to look for faces in")
    p.add_argument("--json", action="store_true", help="print JSON lines (the default output format)")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write copies with boxes and keypoints drawn")
    add_config_args(p)
    p.set_defaults(func=run)


def draw(image, faces) -> None:
    thickness = max(1, round(max(image.shape[:2]) / 600))
    for face in faces:
        d = face.detection
        ok = face.quality is not None and face.quality.ok
        colour = (0, 200, 0) if ok else (0, 165, 255)  # green: would be embedded; orange: gated out
        x1, y1, x2, y2 = (round(float(v)) for v in d.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        for x, y in d.keypoints[:4]:
            cv2.circle(image, (round(float(x)), round(float(y))), thickness + 1, (255, 255, 0), -1)


def run(args: argparse.Namespace) -> int:
    pipe = FacePipeline.from_config(config_from_args(args))
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = read_image(path)
        faces = pipe.detect(image)
        record = {"image": str(path), "faces": [f.detection.to_json() for f in faces]}
        for out, face in zip(record["faces"], faces, strict=True):
            out["quality"] = face.quality.reason if face.quality else None
        print(json.dumps(record), flush=True)
        if args.annotate:
            draw(image, faces)
            cv2.imwrite(str(args.annotate / path.name), image)
    return 0
