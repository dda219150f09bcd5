"""The open-set protocol and its small shared helpers (used by every part of `appliance eval`).

Open-set protocol (contract): the first image of every identity with at least two images is enrolled;
the other images of those identities are mated probes; images of identities not enrolled are non-mated.
"""

from __future__ import annotations

import math

import numpy as np

from appliance.evaluation.lfw import Dataset


def ceil4(x: float) -> float:
    """Round a threshold up, never down: a rounded-down threshold would let more false alerts through."""
    return math.ceil(x * 1e4) / 1e4


def images_by_identity(dataset: Dataset) -> dict[str, list[int]]:
    """Image indices of each identity, in dataset order (first-seen identity order)."""
    by_id: dict[str, list[int]] = {}
    for i, name in enumerate(dataset.identity):
        by_id.setdefault(name, []).append(i)
    return by_id


def open_set_split(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gallery indices, mated probe indices, non-mated probe indices) per the contract."""
    gallery, mated, nonmated = [], [], []
    for idx in images_by_identity(dataset).values():
        if len(idx) >= 2:
            gallery.append(idx[0])
            mated.extend(idx[1:])
        else:
            nonmated.extend(idx)
    return np.array(gallery), np.array(mated), np.array(nonmated)


def similarities(e: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Every image against every image (rows L2-normalised; NaN rows = no face found), minus each side's
    background offset when the scores are normalised (matching/normalise.py)."""
    missing = np.isnan(e).any(axis=1)
    sims = np.nan_to_num(e, nan=0.0) @ np.nan_to_num(e, nan=0.0).T
    if offsets is not None:
        sims -= offsets[:, None] + offsets[None, :]
    sims[missing, :] = -np.inf  # no face: never matches, counted as a miss
    sims[:, missing] = -np.inf
    return sims
