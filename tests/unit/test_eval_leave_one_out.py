"""More non-mated searches for the threshold (evaluation/protocol.py leave_one_out_searches): one per enrolled
person, their own gallery entry never counted, each a different person, and the reported FPIR untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import leave_one_out_searches, open_set_split


def _dataset(identities: list[str]) -> Dataset:
    counter: dict[str, int] = {}
    images = []
    for name in identities:
        counter[name] = counter.get(name, 0) + 1
        images.append(f"{name}/{name}_{counter[name]:04d}.jpg")
    return Dataset(Path("."), images, identities, [], 0)


def _unit(rows: list[list[float]]) -> np.ndarray:
    e = np.array(rows, np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_one_search_per_enrolled_person_without_their_own_entry():
    # a, b enrolled (2 and 3 photos); c and d have one photo each (non-mated probes)
    ds = _dataset(["a", "a", "b", "b", "b", "c", "d"])
    e = _unit([[1, 0, 0], [0.95, 0.3, 0], [0, 1, 0], [0.1, 0.99, 0], [0, 0.9, 0.4], [0, 0, 1], [0.7, 0.7, 0]])
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, e))
    _, mated, _ = open_set_split(ds)
    assert list(images) == [1, 3] and set(images) <= set(mated)  # the first mated photo of a, then of b
    # a's photo is searched against b's entry only, b's against a's only: never their own
    assert np.allclose(top, [e[1] @ e[2], e[3] @ e[0]])
    assert all(top < 0.5)  # their own entries would have scored ~0.95 and ~0.99


def test_offsets_and_missing_faces():
    ds = _dataset(["a", "a", "b", "b"])
    e = _unit([[1, 0], [1, 0.1], [0, 1], [0.1, 1]])
    e[3] = np.nan  # no face in b's probe photo: it never matches
    off = np.array([0.1, 0.2, 0.05, 0.0], np.float32)
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, e, offsets=off))
    assert list(images) == [1, 3]
    assert np.isclose(top[0], e[1] @ e[2] - 0.2 - 0.05) and top[1] == -np.inf


def test_no_enrolled_person_no_search():
    ds = _dataset(["a", "b"])
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, _unit([[1, 0], [0, 1]])))
    assert len(images) == 0 and len(top) == 0
