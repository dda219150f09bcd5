"""Score normalisation against a background set: the score compared with the threshold is the cosine
similarity minus how much each of the two faces looks like faces in general.

Some looks (blurred, small, half-turned, unusual lighting) resemble many people: their embeddings sit
where faces crowd together, and their best score against any watchlist is high whoever they are. Most of
the false alerts at a strict threshold come from such "hub" faces (docs/accuracy.md, "Score
normalisation"). We measure a face's hubness as the mean of its `k` highest cosine similarities to a
background set (faces of people who are never on a watchlist, embedded by the same pipeline) and subtract
half of it for each side of a comparison:

    score = cosine(probe, template) - offset(probe) - offset(template),  offset = 0.5 * hubness

This is symmetric cohort normalisation with a shift only (S-norm without the division by the cohort's
spread, which was measured unstable on a background set of a few hundred faces). The officer still sees
one score against one threshold, on this adjusted scale; a subject with several templates takes the mean
of their offsets, so one unusual photo cannot move it far.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.matching.errors import GalleryError
from appliance.paths import models_dir
from appliance.runtime.background_build import read_build_record
from appliance.runtime.manifest import ModelSpec, sha256_of
from appliance.runtime.types import Normalisation

METHOD = "background-shift"


@dataclass(frozen=True, eq=False)
class BackgroundNormaliser:
    """Offsets from a background set of L2-normalised embeddings (n, D), n >= k."""

    background: np.ndarray
    k: int
    sha256: str = ""

    def __post_init__(self) -> None:
        b = np.asarray(self.background, dtype=np.float32)
        if b.ndim != 2 or len(b) < self.k or self.k < 1:
            raise GalleryError(f"background set of shape {b.shape} cannot give the mean of its top {self.k} scores")
        if not np.isfinite(b).all():
            raise GalleryError("background set has a non-finite value")
        b = np.ascontiguousarray(b)
        b.setflags(write=False)
        object.__setattr__(self, "background", b)

    @property
    def dim(self) -> int:
        return int(self.background.shape[1])

    def offsets(self, embeddings: np.ndarray) -> np.ndarray:
        """Half the mean of each row's k best background scores; NaN rows (no face) get 0."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        missing = np.isnan(e).any(axis=1)
        sims = np.nan_to_num(e, nan=0.0) @ self.background.T
        top = np.partition(sims, sims.shape[1] - self.k, axis=1)[:, -self.k:]
        out = 0.5 * top.mean(axis=1)
        out[missing] = 0.0
        return out.astype(np.float32)

    def subject_offsets(self, embeddings: np.ndarray, row_subject: np.ndarray, n_subjects: int) -> np.ndarray:
        """Per subject, the mean offset of its templates (rows)."""
        per_row = self.offsets(embeddings) if len(embeddings) else np.zeros(0, np.float32)
        total = np.bincount(row_subject, weights=per_row, minlength=n_subjects)
        count = np.bincount(row_subject, minlength=n_subjects)
        return (total / np.maximum(count, 1)).astype(np.float32)

    def describe(self) -> str:
        return (f"{METHOD}: cosine minus half the mean top-{self.k} score of each face against "
                f"{len(self.background)} background faces")


def load_background(path: Path, k: int, sha256: str = "") -> BackgroundNormaliser:
    """The background set written by `appliance models background` (.npy, float32 (n, D))."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GalleryError(f"background set {path} not found: run `make models` (`appliance models background`)"
                           ) from None
    except ValueError as e:
        raise GalleryError(f"background set {path} is not a valid .npy array: {e}") from None
    return BackgroundNormaliser(data, k, sha256)


def background_path(spec: ModelSpec, root: Path | None = None) -> Path | None:
    """Where this embedder's background set lives, or None when its scores are not normalised."""
    norm = spec.normalisation
    return (root or models_dir()) / norm["background"] if norm else None


def normaliser_for(spec: ModelSpec, root: Path | None = None) -> BackgroundNormaliser | None:
    """The normaliser the manifest names for this embedder (None: raw cosine), with its file checked."""
    norm = spec.normalisation
    if not norm:
        return None
    if norm.get("method") != METHOD:
        raise GalleryError(f"model '{spec.id}': normalisation method {norm.get('method')!r} unknown; known: {METHOD}")
    path = background_path(spec, root)
    assert path is not None
    return load_background(path, int(norm["k"]), sha256_of(path) if path.is_file() else "")


def normalisation_record(spec: ModelSpec, normaliser: BackgroundNormaliser | None,
                         root: Path | None = None) -> Normalisation | None:
    """The manifest's [normalisation] table as calibrated: the same, with the background set's sha256 and size."""
    if normaliser is None or not spec.normalisation:
        return None
    record: Normalisation = {**spec.normalisation, "sha256": normaliser.sha256, "faces": len(normaliser.background)}
    path = background_path(spec, root)
    if path is not None and (build := read_build_record(path)) is not None:
        record["photos_sha256"] = build["photos_sha256"]  # so a rebuild elsewhere is recognised as this set
    return record
