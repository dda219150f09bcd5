"""The appliance against its open peer, `face_recognition` (dlib's HOG detector and ResNet encoder), end to end on
the same frames (docs/detection.md, "Against dlib").

Each crowd photo is letterboxed to a 720p frame. Per frame, interleaved so that load on the machine hits both
alike: the peer finds faces (HOG, upsampled N times) and encodes every one; the appliance runs its pipeline
(detect, quality gate, landmarks, align, embed the faces that pass) with 2 interpreter threads and with 1 (dlib's
HOG is single-threaded). The median of `--runs` runs per frame is kept. The peer is not a dependency of the
appliance: install it beside the project's venv to run this (about 9 minutes, dlib compiles):

    .venv/bin/pip install dlib face_recognition face_recognition_models
    .venv/bin/python -m appliance.devtools.peer_compare --upsample 0 1 2 [--out peer.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from appliance.config import load_config
from appliance.devtools.detector_cost import letterbox
from appliance.errors import ApplianceError
from appliance.paths import shared_dir
from appliance.vision.pipeline import FacePipeline

THREADS = (2, 1)


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1e3, out


def compare(photos: list[Path], upsample: int, runs: int) -> dict[str, Any]:
    try:
        import face_recognition  # the peer, only for this comparison
    except ImportError:
        raise ApplianceError("the peer is not installed: .venv/bin/pip install dlib face_recognition "
                             "face_recognition_models (docs/detection.md)") from None
    pipes = {t: FacePipeline.from_config(load_config(None, {"runtime.threads": t})) for t in THREADS}
    rows = []
    for path in photos:
        frame = letterbox(cv2.imread(str(path)), 1280, 720)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        for pipe in pipes.values():
            pipe.process(frame)  # the first call pays for XNNPACK's set-up
        ms: dict[str, list[float]] = {"peer": [], **{f"appliance_{t}_threads": [] for t in THREADS}}
        for _ in range(runs):
            t, (boxes, encodings) = _timed(_peer, face_recognition, rgb, upsample)
            ms["peer"].append(t)
            for threads, pipe in pipes.items():
                t, faces = _timed(pipe.process, frame)
                ms[f"appliance_{threads}_threads"].append(t)
        rows.append({"photo": path.name, "peer_faces": len(boxes), "peer_encoded": len(encodings),
                     "appliance_faces": len(faces), "appliance_embedded": sum(f.embedding is not None for f in faces),
                     **{f"{k}_ms": round(statistics.median(v), 1) for k, v in ms.items()}})
    total = {k: round(sum(r[k] for r in rows), 1) for k in rows[0] if k != "photo"}
    for threads in THREADS:
        total[f"speed_up_{threads}_threads"] = round(total["peer_ms"] / total[f"appliance_{threads}_threads_ms"], 2)
    return {"upsample": upsample, "frames": len(rows), "total": total, "per_photo": rows}


def _peer(face_recognition: Any, rgb: np.ndarray, upsample: int) -> tuple[list, list]:
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=upsample, model="hog")
    return boxes, face_recognition.face_encodings(rgb, boxes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="default: every crowd photo")
    parser.add_argument("--upsample", type=int, nargs="+", default=[2], help="the peer's HOG upsampling (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="runs per frame, the median kept")
    parser.add_argument("--out", type=Path, help="write every figure as JSON")
    args = parser.parse_args(argv)
    crowd = shared_dir() / "data" / "crowd"
    photos = args.photos or sorted(p for p in crowd.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    results = [compare(photos, u, args.runs) for u in args.upsample]
    for r in results:
        t = r["total"]
        print(f"upsample {r['upsample']}: {r['frames']} frames at 720p; peer {t['peer_faces']:.0f} faces found, "
              f"{t['peer_encoded']:.0f} encoded, {t['peer_ms']:.0f} ms; appliance {t['appliance_faces']:.0f} found, "
              f"{t['appliance_embedded']:.0f} embedded, {t['appliance_2_threads_ms']:.0f} ms with 2 threads "
              f"({t['speed_up_2_threads']}x faster), {t['appliance_1_threads_ms']:.0f} ms with 1 "
              f"({t['speed_up_1_threads']}x)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
