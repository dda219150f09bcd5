"""Helpers shared by the CLI modules: config loading and image reading with one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from appliance.config import Config, load_config
from appliance.errors import ApplianceError


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config (default: built-in defaults)")
    p.add_argument("--threads", type=int, help="interpreter threads (overrides runtime.threads)")
    p.add_argument("--embedder", help="embedder id from models/manifest.toml (e.g. mobilefacenet-fp32)")
    p.add_argument("--detector", help="detector id from models/manifest.toml (e.g. blazeface-short)")
    p.add_argument("--tiles", help="detector tiling passes: auto, or grids such as 1,2,4 (overrides detector.tiles)")


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = {}
    if getattr(args, "threads", None):
        overrides["runtime.threads"] = args.threads
    if getattr(args, "embedder", None):
        overrides["models.embedder"] = args.embedder
    if getattr(args, "detector", None):
        overrides["models.detector"] = args.detector
    if getattr(args, "tiles", None) == "auto":
        overrides["detector.tiles"] = "auto"
    elif getattr(args, "tiles", None):
        try:
            overrides["detector.tiles"] = [int(t) for t in args.tiles.split(",")]
        except ValueError:
            raise ApplianceError(
                f"--tiles {args.tiles!r}: expected auto or comma-separated integers such as 1,2,4"
            ) from None
    return load_config(getattr(args, "config", None), overrides)


def read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ApplianceError(f"image {path} not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ApplianceError(f"image {path} cannot be decoded (not a JPEG/PNG/BMP/WebP image?)")
    return image
