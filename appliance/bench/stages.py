"""Vision stage benchmark: ms per stage and end-to-end frames per second on a replayed clip.

The clip is built from the crowd photos in $APPLIANCE_SHARED/data/crowd with
`appliance.devtools.make_clip` (slow pan and zoom, so faces move and change size), at 720p and 1080p.
Two end-to-end figures per resolution:
- every face: each face that passes the quality gate is aligned, embedded and matched on every frame
  (the worst case, and where the per-stage figures come from);
- tracked: the daemon's path, where the tracker embeds a track only at its best few looks.
Video decoding is timed apart and not counted: a camera hands over decoded frames.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from appliance.bench.system import peak_rss_mb
from appliance.config import Config, load_config
from appliance.errors import ApplianceError
from appliance.matching import Gallery, MatchService, resolve_threshold
from appliance.matching.normalise import normaliser_for
from appliance.paths import shared_data_dir

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
STAGES = ["detect", "quality", "landmarks", "align", "embed", "match"]


@dataclass(frozen=True)
class StagePlan:
    seconds: float = 10.0
    fps: float = 15.0
    images: int | None = None  # how many crowd photos (None = all)
    warmup_frames: int = 2
    gallery_size: int = 1000  # random watchlist the match stage searches


QUICK = StagePlan(seconds=1.0, fps=3.0, images=3, warmup_frames=1, gallery_size=100)


def crowd_images(limit: int | None) -> list[Path]:
    folder = shared_data_dir() / "crowd"
    images = sorted(folder.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))
    if not images:
        raise ApplianceError(f"no crowd photos in {folder} (set $APPLIANCE_SHARED)")
    return images[:limit] if limit else images


def summarise(samples: dict[str, list[float]], frames: int) -> dict[str, Any]:
    out = {}
    for name in [*STAGES, *(k for k in samples if k not in STAGES)]:
        ms = samples.get(name, [])
        out[name] = {
            "calls": len(ms),
            "median_ms": round(statistics.median(ms), 3) if ms else None,
            "p95_ms": round(float(np.percentile(ms, 95)), 3) if ms else None,
            "ms_per_frame": round(sum(ms) / frames, 3) if frames else None,
        }
    return out


def frame_stats(frame_ms: list[float]) -> dict[str, float] | None:
    if not frame_ms:
        return None
    return {"median": round(statistics.median(frame_ms), 2), "p95": round(float(np.percentile(frame_ms, 95)), 2)}


def frames_of(path: Path):
    """Decoded frames of a video, with the time each decode took (ms)."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                return
            yield frame, (time.perf_counter() - t0) * 1e3
    finally:
        cap.release()


def run_every_face(pipe: Any, service: MatchService, clip: Path, warmup: int) -> dict[str, Any]:
    pipe.timings.clear()
    frame_ms, decode_ms, detected, embedded = [], [], [], []
    match_ms: list[float] = []
    for i, (frame, dec) in enumerate(frames_of(clip)):
        t0 = time.perf_counter()
        faces = pipe.process(frame)
        m_ms = []
        for face in faces:
            if face.embedding is not None:
                t1 = time.perf_counter()
                service.identify(face.embedding)
                m_ms.append((time.perf_counter() - t1) * 1e3)
        total = (time.perf_counter() - t0) * 1e3
        if i < warmup:  # first invocations pay for XNNPACK set-up and cold caches
            pipe.timings.clear()
            continue
        frame_ms.append(total)
        decode_ms.append(dec)
        match_ms.extend(m_ms)
        detected.append(len(faces))
        embedded.append(sum(f.embedding is not None for f in faces))
    samples = {k: list(v) for k, v in pipe.timings.ms.items()}
    samples["match"] = match_ms
    frames = len(frame_ms)
    return {
        "frames": frames,
        "fps": round(1e3 * frames / sum(frame_ms), 2) if frames else None,
        "frame_ms": frame_stats(frame_ms),
        "faces_per_frame": {"detected_mean": round(float(np.mean(detected)), 2) if frames else None,
                            "detected_max": max(detected, default=0),
                            "embedded_mean": round(float(np.mean(embedded)), 2) if frames else None},
        "decode_ms_median": round(statistics.median(decode_ms), 2) if frames else None,
        "stages": summarise(samples, frames),
    }


def run_tracked(pipe: Any, service: MatchService, config: Config, clip: Path, warmup: int,
                schedule: str = "every_frame") -> dict[str, Any]:
    from appliance.vision.detector import TileSchedule
    from appliance.vision.tracker import FaceTracker

    tracker = FaceTracker(config.tracker)
    tiles = TileSchedule.for_detector(pipe.detector, schedule)
    frame_ms, embedded, detected = [], [], []
    for i, (frame, _) in enumerate(frames_of(clip)):
        t0 = time.perf_counter()
        faces = pipe.detect(frame, grids=tiles.next(frame.shape[1], frame.shape[0]))
        rgb = None
        n = 0
        for tf in tracker.update(faces, i):
            if tf.should_embed:
                rgb = rgb if rgb is not None else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                pipe.embed(frame, tf.face, rgb)
                tf.record(tf.face.embedding, service.identify(tf.face.embedding))
                n += 1
        tracker.pop_expired()  # drop ended tracks (and their embeddings) as the daemon does
        if i >= warmup:
            frame_ms.append((time.perf_counter() - t0) * 1e3)
            embedded.append(n)
            detected.append(len(faces))
    tracker.flush()
    frames = len(frame_ms)
    return {
        "schedule": schedule,
        "frames": frames,
        "detected_per_frame_mean": round(float(np.mean(detected)), 2) if frames else None,
        "fps": round(1e3 * frames / sum(frame_ms), 2) if frames else None,
        "frame_ms": frame_stats(frame_ms),
        "embedded_per_frame_mean": round(float(np.mean(embedded)), 2) if frames else None,
        "tracks_started": tracker.tracks_started,
    }


def bench_stages(plan: StagePlan, workdir: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Returns the figures, or {"skipped": reason} when models, data or the pipeline are unavailable."""
    try:
        from appliance.devtools.make_clip import make_clip
        from appliance.vision.pipeline import FacePipeline
    except ImportError as e:
        return {"skipped": f"vision pipeline not importable: {e}"}
    try:
        images = crowd_images(plan.images)
        config = load_config()
        t0 = time.perf_counter()
        pipe = FacePipeline.from_config(config)
        load_s = time.perf_counter() - t0
        threshold = resolve_threshold(config.matcher, pipe.embedder_spec)
    except ApplianceError as e:
        return {"skipped": str(e)}

    rng = np.random.default_rng(0)
    dim = int(pipe.embedder_spec.raw.get("embedding_size", 128))
    emb = rng.standard_normal((plan.gallery_size, dim), dtype=np.float32)
    gallery = Gallery([f"s{i}" for i in range(plan.gallery_size)], emb / np.linalg.norm(emb, axis=1, keepdims=True))
    service = MatchService(threshold, backend=config.matcher.backend, top_k=config.matcher.top_k, gallery=gallery,
                           normaliser=normaliser_for(pipe.embedder_spec, config.models.dir))

    out: dict[str, Any] = {
        "clip": {"source": f"{len(images)} crowd photos from $APPLIANCE_SHARED/data/crowd",
                 "seconds": plan.seconds, "fps": plan.fps, "warmup_frames": plan.warmup_frames},
        "models": {"detector": config.models.detector, "landmarks": config.models.landmarks,
                   "embedder": config.models.embedder},
        "runtime": {"threads": config.runtime.threads, "xnnpack": config.runtime.xnnpack},
        "detector": {"tiles": tiles if isinstance(tiles := config.detector.tiles, str) else list(tiles),
                     "min_face_px": config.detector.min_face_px, "tile_overlap": config.detector.tile_overlap},
        "matcher": {"backend": config.matcher.backend, "gallery": plan.gallery_size, "threshold": threshold},
        "pipeline_load_s": round(load_s, 3),
        "resolutions": {},
    }
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for label, size in RESOLUTIONS.items():
            peak0 = peak_rss_mb()
            clip = make_clip(images, Path(tmp) / f"clip_{label}.mp4", size, plan.seconds, plan.fps)
            every = run_every_face(pipe, service, clip.path, plan.warmup_frames)
            tracked = run_tracked(pipe, service, config, clip.path, plan.warmup_frames)
            # The same path with the tiling passes taking turns (detector.tile_schedule = "round_robin").
            round_robin = run_tracked(pipe, service, config, clip.path, plan.warmup_frames, "round_robin")
            out["resolutions"][label] = {
                "size": list(size), "every_face": every, "tracked": tracked, "tracked_round_robin": round_robin,
                "peak_rss_delta_mb": round(peak_rss_mb() - peak0, 1),
            }
            log(f"stages {label}: every face {every['fps']} fps, tracked {tracked['fps']} fps "
                f"(round robin {round_robin['fps']} fps, tracks {tracked['tracks_started']} vs "
                f"{round_robin['tracks_started']}), {every['faces_per_frame']['detected_mean']} faces/frame")
    return out
