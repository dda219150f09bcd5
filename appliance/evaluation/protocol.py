"""The open-set protocol and its small shared helpers (used by every part of `appliance eval`).

Open-set protocol (contract): the first image of every identity with at least two images is enrolled;
the other images of those identities are mated probes; images of identities not enrolled are non-mated.
"""

from __future__ import annotations

import math

import numpy as np

from appliance.evaluation.embed_dataset import DatasetEmbeddings
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


SEARCHES_PER_PERSON = 3  # at most this many leave-one-out searches per enrolled person: no one person fills the tail


def leave_one_out_searches(dataset: Dataset, emb: DatasetEmbeddings) -> tuple[np.ndarray, np.ndarray]:
    """More non-mated searches for calibrating the threshold: (image index, top score), up to
    SEARCHES_PER_PERSON per enrolled person.

    Each enrolled person's photos (their gallery photo first, then their mated photos, in data set order) are
    searched against the gallery with their own entry removed: searches by someone who is not on the list,
    against 1 fewer subject. With the non-mated probes, every person in the data set makes at least one
    non-mated search (LFW: 1,874 + 2,669 searches by 2,948 people instead of 1,874 by 1,874), so the tail that
    sets the threshold is measured on more people and more photos, and its confidence bound is tighter. One
    person's searches are alike, so the bound resamples people, each with all their searches (tail.py). The
    FPIR *reported* is still on the non-mated probes alone.
    """
    gallery, _, _ = open_set_split(dataset)
    by_id = images_by_identity(dataset)
    searches = np.array(sorted(i for idx in by_id.values() if len(idx) >= 2 for i in idx[:SEARCHES_PER_PERSON]),
                        np.int64)
    if not len(searches):
        return searches, np.zeros(0, np.float32)
    ids = np.array(dataset.identity)
    e, off = emb.embeddings, emb.offset()
    sims = np.nan_to_num(e[searches], nan=0.0) @ np.nan_to_num(e[gallery], nan=0.0).T
    sims -= off[searches][:, None] + off[gallery][None, :]
    sims[:, np.isnan(e[gallery]).any(axis=1)] = -np.inf
    sims[ids[searches][:, None] == ids[gallery][None, :]] = -np.inf  # their own entry is not on this list
    valid = ~np.isnan(e[searches]).any(axis=1)
    return searches, np.where(valid, sims.max(axis=1), -np.inf).astype(np.float32)
