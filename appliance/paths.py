"""Where things live. The one helper that finds ../shared (test data and model files)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared folder with test data and model files: $APPLIANCE_SHARED, default ../shared beside the project."""
    env = os.environ.get("APPLIANCE_SHARED")
    return Path(env).expanduser().resolve() if env else (PROJECT_ROOT.parent / "shared").resolve()


def shared_data_dir() -> Path:
    return shared_dir() / "data"


def models_dir() -> Path:
    """Where installed model files and the manifest live: $APPLIANCE_MODELS, default <project>/models."""
    env = os.environ.get("APPLIANCE_MODELS")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "models"
