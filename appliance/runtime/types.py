"""The records the runtime package hands to other packages (issue 14: typed seams). TypedDicts: plain dicts
at run time, read from and written to models/manifest.toml under these names."""

from __future__ import annotations

from typing import TypedDict


class _NormalisationRequired(TypedDict):
    method: str  # "background-shift" (matching/normalise.py METHOD)
    k: int
    background: str  # the background set, relative to the models directory


class Normalisation(_NormalisationRequired, total=False):
    """A model's [normalisation] table (ModelSpec.normalisation): how its scores are normalised before the
    threshold. As calibrated (matching.normalise.normalisation_record) it also records the background set's
    sha256 and size, and how its photos were chosen."""

    sha256: str
    faces: int
    photos: str
    photos_sha256: str  # the photos it was built from (vision/background.py photos_sha256)


class BackgroundBuild(TypedDict):
    """The record written beside a background set built on this machine (background/<model>.json): what it
    was built from, so a set rebuilt from the calibrated photos on a CPU whose arithmetic gives other bytes is
    told apart from a set built from other photos (docs/accuracy.md, "One threshold on every x86 CPU")."""

    sha256: str  # of the .npy beside it
    faces: int
    photos_sha256: str
    pipeline: str  # vision/fingerprint.py pipeline_digest of the pipeline that built it
    cpu: str
