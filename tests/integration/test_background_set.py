"""The background set behind score normalisation: rebuilt bit for bit on the calibrated pipeline, carried to a
van as the calibrated file, and refused with one line when it cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from appliance.runtime.manifest import load_manifest, sha256_of

MODEL = "mobilefacenet-int8"
PROJECT_MODELS = Path(__file__).resolve().parents[2] / "models"


def models_copy(tmp: Path) -> Path:
    """A models folder with the manifest and the model files (linked), and no background set."""
    root = tmp / "models"
    shutil.copytree(PROJECT_MODELS, root, ignore=shutil.ignore_patterns("background"), symlinks=True)
    return root


def appliance(args: list[str], models: Path, shared: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "APPLIANCE_MODELS": str(models)}
    if shared is not None:
        env["APPLIANCE_SHARED"] = str(shared)
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_rebuilt_from_the_photos_it_is_the_calibrated_file(tmp_path, crowd_dir):
    models = models_copy(tmp_path)
    norm = load_manifest(models).get(MODEL).normalisation
    r = appliance(["models", "background", "--photos", str(crowd_dir)], models)
    assert r.returncode == 0, r.stderr
    assert "the calibrated one" in r.stdout and "NOT" not in r.stdout, r.stdout
    assert sha256_of(models / norm["background"]) == norm["sha256"]


def test_a_van_gets_the_build_machines_file(tmp_path):
    models = models_copy(tmp_path)
    norm = load_manifest(models).get(MODEL).normalisation
    nowhere = tmp_path / "no-shared"  # no photos to build from: it must be copied
    r = appliance(["models", "install", "--no-download", "--background-source", str(PROJECT_MODELS)], models, nowhere)
    assert r.returncode == 0, r.stderr
    assert f"copied from {PROJECT_MODELS / norm['background']}" in r.stdout
    assert sha256_of(models / norm["background"]) == norm["sha256"]


def test_no_file_and_no_photos_is_one_clear_error(tmp_path):
    models = models_copy(tmp_path)
    nowhere = tmp_path / "no-shared"
    r = appliance(["models", "install", "--no-download"], models, nowhere)
    assert r.returncode != 0
    assert "background set for mobilefacenet-int8" in r.stderr and "Traceback" not in r.stderr, r.stderr
