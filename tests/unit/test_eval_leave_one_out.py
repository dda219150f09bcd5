"""More non-mated searches for the threshold (evaluation/protocol.py leave_one_out_searches): up to
SEARCHES_PER_PERSON per enrolled person, their own gallery entry never counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import SEARCHES_PER_PERSON, leave_one_out_searches


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


def test_every_photo_of_an_enrolled_person_searches_without_their_own_entry():
    # a, b enrolled (2 and 3 photos); c and d have one photo each (non-mated probes, not searched here)
    ds = _dataset(["a", "a", "b", "b", "b", "c", "d"])
    e = _unit([[1, 0, 0], [0.95, 0.3, 0], [0, 1, 0], [0.1, 0.99, 0], [0, 0.9, 0.4], [0, 0, 1], [0.7, 0.7, 0]])
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, e))
    assert list(images) == [0, 1, 2, 3, 4]  # the gallery photo too: off the list, it is just another photo
    # a's photos are searched against b's entry (photo 2) only, b's against a's (photo 0) only: never their own
    assert np.allclose(top, [e[0] @ e[2], e[1] @ e[2], e[2] @ e[0], e[3] @ e[0], e[4] @ e[0]])
    assert all(top < 0.5)  # their own entries would have scored 0.9 and more


def test_no_person_makes_more_than_the_cap():
    ds = _dataset(["a"] * 7 + ["b", "b"])
    e = _unit([[1, 0.1 * i] for i in range(7)] + [[0, 1], [0.1, 1]])
    images, _ = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, e))
    assert list(images) == [*range(SEARCHES_PER_PERSON), 7, 8]


def test_offsets_and_missing_faces():
    ds = _dataset(["a", "a", "b", "b"])
    e = _unit([[1, 0], [1, 0.1], [0, 1], [0.1, 1]])
    e[3] = np.nan  # no face in b's probe photo: it never matches
    off = np.array([0.1, 0.2, 0.05, 0.0], np.float32)
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, e, offsets=off))
    assert list(images) == [0, 1, 2, 3]
    assert np.isclose(top[1], e[1] @ e[2] - 0.2 - 0.05) and top[3] == -np.inf


def test_no_enrolled_person_no_search():
    ds = _dataset(["a", "b"])
    images, top = leave_one_out_searches(ds, DatasetEmbeddings(ds.images, _unit([[1, 0], [0, 1]])))
    assert len(images) == 0 and len(top) == 0
