"""The record beside a background set built on this machine (background/<model>.json, written by
vision/background.py): which photos it came from, by which pipeline and on which CPU. It lets a set rebuilt
from the calibrated photos by the calibrated pipeline on a CPU that rounds differently be told apart from a set
built from other photos or by another pipeline (docs/accuracy.md, "One threshold on every x86 CPU")."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.runtime.manifest import sha256_of
from appliance.runtime.types import BackgroundBuild, Normalisation


def build_record_path(background: Path) -> Path:
    return background.with_suffix(".json")


def read_build_record(background: Path) -> BackgroundBuild | None:
    """The build record of this very file (None: none, unreadable, or written for other bytes)."""
    try:
        record = json.loads(build_record_path(background).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("sha256") != sha256_of(background):
        return None
    return record  # type: ignore[return-value]


def rebuilt_from_calibrated_photos(background: Path, norm: Normalisation,
                                   pipeline: str | None) -> BackgroundBuild | None:
    """The build record when this file is not the calibrated one byte for byte but was built by `pipeline` (a
    vision/fingerprint.py pipeline_digest) from the very photos the calibration's set came from, with as many
    faces: another CPU's arithmetic (AVX-512 against AVX2, say) moves the last bits of every embedding, and with
    them the file's sha256, not the set. None otherwise (other photos, another size, another pipeline, a record
    that does not name its pipeline, no record, or the manifest names no photos)."""
    record = read_build_record(background) if background.is_file() else None
    if record is None or not norm.get("photos_sha256") or not pipeline:
        return None
    same = (record.get("photos_sha256") == norm["photos_sha256"] and record.get("faces") == norm.get("faces")
            and record.get("pipeline") == pipeline)
    return record if same else None
