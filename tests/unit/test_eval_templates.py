"""The several-photos protocol: who is enrolled, who probes, and that the van's best-template rule is measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.templates import MAX_TEMPLATES, evaluate_templates, multi_split
from appliance.matching.gallery import l2_normalise


def dataset(counts: dict[str, int]) -> Dataset:
    images = [f"{n}/{n}_{i + 1:04d}.jpg" for n, c in sorted(counts.items()) for i in range(c)]
    return Dataset(Path("."), images, [k.split("/")[0] for k in images], [], 0)


def test_split_keeps_a_probe_for_every_enrolled_person():
    ds = dataset({"a": 2, "b": 3, "c": 6, "d": 1})
    enrolled, mated, nonmated = multi_split(ds)
    names = [ds.identity[rows[0]] for rows in enrolled]
    assert dict(zip(names, map(len, enrolled), strict=True)) == {"a": 1, "b": 2, "c": MAX_TEMPLATES}
    assert sorted(ds.identity[i] for i in mated) == ["a", "b", "c", "c", "c"]
    assert [ds.identity[i] for i in nonmated] == ["d"]
    assert not set(mated) & {r for rows in enrolled for r in rows}


def test_best_template_finds_people_one_photo_misses():
    # Each person's photos vary a lot (two "looks" per person); probes resemble one look or the other.
    rng = np.random.default_rng(0)
    people = 60
    ds = dataset({**{f"p{i:02d}": 5 for i in range(people)}, **{f"x{i:03d}": 1 for i in range(300)}})
    looks = l2_normalise(rng.standard_normal((people, 2, 64), dtype=np.float32))
    e = np.zeros((len(ds.images), 64), np.float32)
    for k, name in enumerate(ds.identity):
        if name.startswith("p"):
            look = looks[int(name[1:]), int(ds.images[k][-5]) % 2]
            e[k] = look + 0.05 * rng.standard_normal(64)
        else:
            e[k] = rng.standard_normal(64)
    emb = DatasetEmbeddings(ds.images, l2_normalise(e))
    out = evaluate_templates(ds, emb, threshold=0.5)
    v = out["variants"]
    assert out["subjects"] == people and out["templates"] == people * MAX_TEMPLATES
    assert v["best template"]["tpir_at_threshold"] > v["one photo"]["tpir_at_threshold"] + 0.2
    assert v["best template"]["rank1"] >= v["one photo"]["rank1"]
    assert set(v["fused template"]) == set(v["one photo"])
