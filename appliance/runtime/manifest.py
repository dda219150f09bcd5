"""The model manifest (models/manifest.toml): which files, their sha256, source, licence and calibration.

Model files are never committed. `install_models` copies them from $APPLIANCE_SHARED/models or, for the
MediaPipe models, extracts them from their PyPI wheel, and verifies every sha256.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from appliance.errors import ModelError
from appliance.paths import models_dir, shared_dir
from appliance.runtime.types import Normalisation

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

MANIFEST_NAME = "manifest.toml"
# Runtimes a manifest entry may name (`runtime = ...`); an entry without one runs on LiteRT.
LITERT = "litert"
ONNXRUNTIME = "onnxruntime"
RUNTIMES = (LITERT, ONNXRUNTIME)
LAYOUTS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class Calibration:
    """The operating point measured by `appliance eval --calibrate`."""

    threshold: float
    floor: float
    target_fpir: float
    evidence: dict[str, Any] | str = ""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    role: str
    file: str
    sha256: str
    bytes: int
    source: str
    licence: str
    input: dict[str, Any]
    output: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def calibration(self) -> Calibration | None:
        cal = self.raw.get("calibration")
        if not cal:
            return None
        return Calibration(
            threshold=float(cal["threshold"]),
            floor=float(cal["floor"]),
            target_fpir=float(cal.get("target_fpir", 1e-3)),
            evidence=cal.get("evidence", ""),
        )

    @property
    def normalisation(self) -> Normalisation | None:
        """How this embedder's scores are normalised before the threshold (matching/normalise.py), or None
        for the raw cosine. The calibrated threshold is on that scale."""
        return self.raw.get("normalisation") or None

    @property
    def runtime(self) -> str:
        return str(self.raw.get("runtime", LITERT))

    @property
    def layout(self) -> str:
        """How an image input is laid out: NHWC (TFLite's way) unless the input spec says NCHW."""
        return str(self.input.get("layout", "NHWC"))

    def path(self, root: Path | None = None) -> Path:
        return (root or models_dir()) / self.file

    def how_to_get(self) -> str:
        if "pypi" in self.raw:
            p = self.raw["pypi"]
            wheel = f"{p['package']}=={p['version']}"
            return f"run `make models` (copies from $APPLIANCE_SHARED/models or the PyPI wheel {wheel})"
        return "run `make models` with $APPLIANCE_SHARED pointing at a folder holding models/" + self.file


@dataclass(frozen=True)
class Manifest:
    path: Path
    defaults: dict[str, str]
    models: dict[str, ModelSpec]

    def get(self, model_id: str, role: str | None = None) -> ModelSpec:
        try:
            spec = self.models[model_id]
        except KeyError:
            raise ModelError(
                f"model '{model_id}' is not in {self.path}; known: {', '.join(sorted(self.models))}"
            ) from None
        if role and spec.role != role:
            raise ModelError(f"model '{model_id}' is a {spec.role}, not a {role}")
        return spec

    def default(self, role: str) -> ModelSpec:
        return self.get(self.defaults[role], role)


def load_manifest(root: Path | None = None) -> Manifest:
    path = (root or models_dir()) / MANIFEST_NAME
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"model manifest not found at {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ModelError(f"model manifest {path} is not valid TOML: {e}") from None
    models = {}
    for model_id, entry in data.get("models", {}).items():
        try:
            models[model_id] = ModelSpec(
                id=model_id,
                role=entry["role"],
                file=entry["file"],
                sha256=entry["sha256"],
                bytes=int(entry["bytes"]),
                source=entry["source"],
                licence=entry["licence"],
                input=entry["input"],
                output=entry["output"],
                raw=entry,
            )
        except KeyError as e:
            raise ModelError(f"model manifest {path}: model '{model_id}' lacks field {e}") from None
        spec = models[model_id]
        if spec.runtime not in RUNTIMES:
            raise ModelError(
                f"model manifest {path}: model '{model_id}' has runtime {spec.runtime!r}; known: {', '.join(RUNTIMES)}"
            )
        if spec.layout not in LAYOUTS:
            raise ModelError(
                f"model manifest {path}: model '{model_id}' has input.layout {spec.layout!r}; "
                f"known: {', '.join(LAYOUTS)}"
            )
    return Manifest(path=path, defaults=data.get("defaults", {}), models=models)


def write_calibration(model_id: str, calibration: dict[str, Any], root: Path | None = None,
                      normalisation: Normalisation | None = None) -> Path:
    """Write a model's [calibration] table back into the manifest (used by `appliance eval --calibrate`),
    and its [normalisation] table when the scale was measured with one (the background set's sha256)."""
    path = (root or models_dir()) / MANIFEST_NAME
    data = tomllib.loads(path.read_text())
    data["models"][model_id]["calibration"] = calibration
    if normalisation:
        data["models"][model_id]["normalisation"] = normalisation
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    path.write_text(header + "\n" + tomli_w.dumps(data))
    return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_model(spec: ModelSpec, root: Path | None = None) -> Path:
    """Return the model's path, or raise ModelError with one line saying which file and how to get it."""
    path = spec.path(root)
    if not path.is_file():
        raise ModelError(f"model file {path} ({spec.id}) is missing: {spec.how_to_get()}")
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise ModelError(
            f"model file {path} ({spec.id}) is corrupt: sha256 {digest[:12]}… expected {spec.sha256[:12]}…; "
            f"delete it and {spec.how_to_get()}"
        )
    return path


def _from_pypi_wheel(spec: ModelSpec, dest: Path) -> bool:
    """Fetch the model from the PyPI wheel named in the manifest (MediaPipe models only)."""
    pypi = spec.raw.get("pypi")
    if not pypi:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "-d", tmp, f"{pypi['package']}=={pypi['version']}"]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return False
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as z, z.open(pypi["member"]) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
            return True
    return False


def install_models(
    manifest: Manifest, source: Path | None = None, log=print, allow_download: bool = True
) -> list[Path]:
    """Install every model of the manifest into its folder; verify each sha256. Idempotent."""
    source = source or shared_dir() / "models"
    root = manifest.path.parent
    installed: list[Path] = []
    failures: list[str] = []
    for spec in manifest.models.values():
        dest = spec.path(root)
        if dest.is_file() and sha256_of(dest) == spec.sha256:
            log(f"ok       {spec.id:22} {dest}")
            installed.append(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        candidate = source / spec.file
        how = ""
        if candidate.is_file():
            shutil.copyfile(candidate, dest)
            how = f"copied from {candidate}"
        elif allow_download and _from_pypi_wheel(spec, dest):
            how = f"extracted from PyPI wheel {spec.raw['pypi']['package']}"
        if not how:
            failures.append(f"model file {spec.file} ({spec.id}) not found in {source}: {spec.how_to_get()}")
            continue
        try:
            verify_model(spec, root)
        except ModelError as e:
            dest.unlink(missing_ok=True)
            failures.append(str(e))
            continue
        log(f"installed {spec.id:21} {how}")
        installed.append(dest)
    if failures:
        raise ModelError("; ".join(failures))
    return installed
