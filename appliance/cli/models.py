"""`appliance models install|verify|list`: install and check the model files named in the manifest."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from appliance.config import load_config
from appliance.errors import ApplianceError
from appliance.matching.normalise import background_path, normaliser_for
from appliance.paths import shared_dir
from appliance.runtime.background_build import build_record_path, read_build_record, rebuilt_from_calibrated_photos
from appliance.runtime.loader import runtime_version
from appliance.runtime.manifest import Manifest, ModelSpec, install_models, load_manifest, sha256_of, verify_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="install, verify or list the model files (models/manifest.toml)")
    p.add_argument("action", choices=["install", "verify", "list", "background"],
                   help="install: copy and check every model file, then the background sets; verify: check their "
                   "sha256; list: the manifest; background: (re)build each embedder's background set from photos")
    p.add_argument("--source", type=Path, help="folder with the model files (default $APPLIANCE_SHARED/models)")
    p.add_argument("--background-source", type=Path, metavar="DIR",
                   help="another folder holding background/<model>.npy as calibrated (deploy/install.sh passes the "
                   "build machine's models/)")
    p.add_argument("--photos", type=Path, metavar="DIR",
                   help="background: photos of people never on a watchlist (default $APPLIANCE_SHARED/data/crowd)")
    p.add_argument("--no-download", action="store_true", help="never fetch from PyPI")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    if args.action == "install":
        install_models(manifest, source=args.source, allow_download=not args.no_download)
        install_backgrounds(manifest, [args.source or shared_dir() / "models", args.background_source], args.photos)
    elif args.action == "background":
        install_backgrounds(manifest, [], args.photos, rebuild=True)
    elif args.action == "verify":
        for spec in manifest.models.values():
            print(f"ok  {spec.id:22} {runtime_version(spec.runtime):22} {verify_model(spec)}")
            if (norm := spec.normalisation) and (path := background_path(spec, manifest.path.parent)):
                normaliser_for(spec, manifest.path.parent)  # present and readable, or one clear error
                print(f"ok  {spec.id + ' background':22} {norm['method']:22} {path} ({background_status(path, spec)})")
    else:
        for spec in manifest.models.values():
            cal = spec.calibration
            thr = f"threshold {cal.threshold:.3f} (floor {cal.floor:.3f})" if cal else ""
            print(f"{spec.id:22} {spec.role:10} {spec.runtime:12} {spec.file:45} {spec.licence.split(' ')[0]:12} {thr}")
    return 0


def install_backgrounds(manifest: Manifest, sources: list[Path | None], photos: Path | None,
                        rebuild: bool = False) -> None:
    """Each normalised embedder's background set: kept if it is the calibrated one, else copied from a source
    folder that holds the calibrated file (a device takes the build machine's), else built from the photos
    with this pipeline (and said plainly when that gives another file than the calibrated one)."""
    root = manifest.path.parent
    for spec in manifest.models.values():
        norm = spec.normalisation
        dest = background_path(spec, root)
        if not norm or dest is None:
            continue
        want = norm.get("sha256")
        if not rebuild and dest.is_file() and sha256_of(dest) == want:
            print(f"ok       {spec.id + ' background':22} {dest}")
            continue
        candidates = [s / norm["background"] for s in sources if s is not None]
        found = next((c for c in candidates if c.is_file() and sha256_of(c) == want), None)
        calibrated = calibrated_pipeline(spec)
        found = found or next((c for c in candidates if rebuilt_from_calibrated_photos(c, norm, calibrated)), None)
        if not rebuild and found is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, dest)
            if build_record_path(found).is_file():  # the build machine's record travels with its file
                shutil.copyfile(build_record_path(found), build_record_path(dest))
            print(f"installed {spec.id + ' background':21} copied from {found} ({background_status(dest, spec)})")
            continue
        folder = photos or shared_dir() / "data" / "crowd"
        if not folder.is_dir():
            where = ", ".join(map(str, candidates)) or "no source folder"
            raise ApplianceError(f"background set for {spec.id}: not in {where} and no photos at {folder} to build it "
                                 "from (pass --photos DIR, or --background-source with the build machine's models/)")
        from appliance.vision.background import embed_background, write_build_record  # the pipeline only to build
        from appliance.vision.fingerprint import embedding_pipeline_digest
        from appliance.vision.pipeline import FacePipeline

        config = load_config(None, {"models.embedder": spec.id, "models.dir": str(root)})
        faces = embed_background(FacePipeline.from_config(config), folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as f:
            np.save(f, faces, allow_pickle=False)
        write_build_record(dest, folder, len(faces), embedding_pipeline_digest(config))
        print(f"built    {spec.id + ' background':22} {len(faces)} faces from {folder}: sha256 {sha256_of(dest)}, "
              f"{background_status(dest, spec)}")


def calibrated_pipeline(spec: ModelSpec) -> str | None:
    """The pipeline_digest of the pipeline this embedder's threshold was calibrated on (None: not recorded)."""
    from appliance.vision.fingerprint import calibrated_fingerprint, pipeline_digest  # OpenCV only when needed

    return pipeline_digest(calibrated_fingerprint(spec))


def background_status(path: Path, spec: ModelSpec) -> str:
    """How an installed background set stands against the calibrated one, in one phrase."""
    norm = spec.normalisation or {}
    if sha256_of(path) == norm.get("sha256"):
        return "the calibrated one"
    if build := rebuilt_from_calibrated_photos(path, norm, calibrated_pipeline(spec)):
        return (f"the calibrated set rebuilt from its photos by the calibrated pipeline on {build['cpu']}: other "
                f"last bits than the calibrated file ({norm.get('sha256')}), the same threshold (docs/accuracy.md, "
                "\"One threshold on every x86 CPU\")")
    record = read_build_record(path)
    if record is not None and "pipeline" not in record and record.get("photos_sha256") == norm.get("photos_sha256"):
        return (f"NOT the calibrated one ({norm.get('sha256')}) as far as can be told: built from the calibrated "
                "photos, but its build record predates the pipeline it names; rebuild it (`appliance models "
                "background`) or take the build machine's (`appliance models install --background-source DIR`)")
    return (f"NOT the calibrated one ({norm.get('sha256')}): other photos, or another pipeline than the "
            "calibration's (`appliance selftest --only pipeline` names the difference); `make calibrate`")
