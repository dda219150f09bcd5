"""The background set behind score normalisation: rebuilt bit for bit on the calibrated pipeline, carried to a
van as the calibrated file, and refused with one line when it cannot be had."""

from __future__ import annotations

import json
import os
import platform
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


def test_rebuilt_from_the_photos_it_is_the_calibrated_set(tmp_path, crowd_dir):
    """Bit for bit on the calibration's arithmetic; on a CPU that rounds differently, recognised as the calibrated
    set by the photos it came from (its build record), and the same bytes every time on this CPU."""
    models = models_copy(tmp_path)
    norm = load_manifest(models).get(MODEL).normalisation
    r = appliance(["models", "background", "--photos", str(crowd_dir)], models)
    assert r.returncode == 0, r.stderr
    assert "NOT" not in r.stdout, r.stdout
    path = models / norm["background"]
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == sha256_of(path) and record["faces"] == norm["faces"] == 277
    assert record["photos_sha256"] == norm["photos_sha256"] and record["cpu"].startswith(platform.machine())
    from appliance.vision.fingerprint import calibrated_fingerprint, pipeline_digest

    assert record["pipeline"] == pipeline_digest(calibrated_fingerprint(load_manifest(models).get(MODEL)))
    if sha256_of(path) == norm["sha256"]:
        assert "the calibrated one" in r.stdout
    else:
        assert f"rebuilt from its photos by the calibrated pipeline on {record['cpu']}" in r.stdout, r.stdout
    first = sha256_of(path)
    assert appliance(["models", "background", "--photos", str(crowd_dir)], models).returncode == 0
    assert sha256_of(path) == first  # one CPU, one file


def test_other_photos_are_another_background_set(tmp_path, crowd_dir):
    """Built from other photos it is not the calibrated set, whatever the CPU: one line says so, and the
    pipeline check names the difference (a recalibration)."""
    models = models_copy(tmp_path)
    photos = tmp_path / "fewer"
    photos.mkdir()
    for name in sorted(p.name for p in crowd_dir.glob("*.jpg"))[:4]:
        shutil.copy(crowd_dir / name, photos / name)
    r = appliance(["models", "background", "--photos", str(photos)], models)
    assert r.returncode == 0, r.stderr
    assert "NOT the calibrated one" in r.stdout and "`make calibrate`" in r.stdout, r.stdout
    config = tmp_path / "appliance.toml"
    config.write_text(f"[device]\ndata_dir = '{tmp_path / 'data'}'\n")
    check = appliance(["selftest", "--config", str(config), "--only", "pipeline", "--json"], models)
    (pipeline,) = json.loads(check.stdout)["checks"]
    assert pipeline["status"] == "fail" and "scores background-shift top-5 background sha256:" in pipeline["reason"]


def test_a_van_gets_the_build_machines_file(tmp_path):
    models = models_copy(tmp_path)
    norm = load_manifest(models).get(MODEL).normalisation
    built = PROJECT_MODELS / norm["background"]  # what `make models` left on this build machine
    nowhere = tmp_path / "no-shared"  # no photos to build from: it must be copied
    r = appliance(["models", "install", "--no-download", "--background-source", str(PROJECT_MODELS)], models, nowhere)
    assert r.returncode == 0, r.stderr
    assert f"copied from {built}" in r.stdout
    assert sha256_of(models / norm["background"]) == sha256_of(built)
    if sha256_of(built) != norm["sha256"]:  # rebuilt on this CPU: its record travels with it
        assert (models / norm["background"]).with_suffix(".json").read_text() == built.with_suffix(".json").read_text()
    assert "NOT" not in r.stdout, r.stdout


def test_no_file_and_no_photos_is_one_clear_error(tmp_path):
    models = models_copy(tmp_path)
    nowhere = tmp_path / "no-shared"
    r = appliance(["models", "install", "--no-download"], models, nowhere)
    assert r.returncode != 0
    assert "background set for mobilefacenet-int8" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _nudged_copy(models: Path, pipeline: str | None) -> None:
    """The build machine's set with its last bits moved (as another CPU's arithmetic moves them) and a build
    record naming the calibrated photos and `pipeline` (None: a record that names no pipeline)."""
    import numpy as np

    norm = load_manifest(models).get(MODEL).normalisation
    path = models / norm["background"]
    path.parent.mkdir(parents=True, exist_ok=True)
    faces = np.load(PROJECT_MODELS / norm["background"])
    faces[0, 0] = np.nextafter(faces[0, 0], np.float32(1))
    with path.open("wb") as f:
        np.save(f, faces, allow_pickle=False)
    record = {"sha256": sha256_of(path), "faces": len(faces), "photos_sha256": norm["photos_sha256"],
              "pipeline": pipeline, "cpu": "x86_64 ANOTHER-CPU"}
    if pipeline is None:
        del record["pipeline"]
    path.with_suffix(".json").write_text(json.dumps(record))


def _pipeline_check(tmp: Path, models: Path) -> dict:
    config = tmp / "appliance.toml"
    config.write_text(f"[device]\ndata_dir = '{tmp / 'data'}'\n")
    check = appliance(["selftest", "--config", str(config), "--only", "pipeline", "--json"], models)
    (pipeline,) = json.loads(check.stdout)["checks"]
    return pipeline


def test_a_rebuilt_set_counts_only_when_the_calibrated_pipeline_built_it(tmp_path):
    """The calibrated photos are not enough: a set built from them by another pipeline (another OpenCV, other
    quality settings) is another set, even once the pipeline is back to the calibrated one, and a record that
    does not name its pipeline proves nothing."""
    from appliance.vision.fingerprint import calibrated_fingerprint, pipeline_digest

    models = models_copy(tmp_path)
    calibrated = pipeline_digest(calibrated_fingerprint(load_manifest(models).get(MODEL)))
    assert calibrated

    _nudged_copy(models, calibrated)
    verify = appliance(["models", "verify"], models)
    assert verify.returncode == 0, verify.stderr
    assert "rebuilt from its photos by the calibrated pipeline on x86_64 ANOTHER-CPU" in verify.stdout, verify.stdout
    assert _pipeline_check(tmp_path, models)["status"] == "pass"

    for pipeline, how in (("0" * 64, "`make calibrate`"), (None, "predates the pipeline it names")):
        _nudged_copy(models, pipeline)
        verify = appliance(["models", "verify"], models)
        assert "NOT the calibrated one" in verify.stdout and how in verify.stdout, verify.stdout
        check = _pipeline_check(tmp_path, models)
        assert check["status"] == "fail" and "scores background-shift top-5 background sha256:" in check["reason"]
