"""Multi-look decision rules on constructed tracks where every score is known."""

import numpy as np
import pytest

from appliance.evaluation.fusion import Tracks, compare_at_tpir, degrade, rule_scores, threshold_for_tpir

G = np.eye(3, 4, dtype=np.float32)  # gallery: subjects a, b, c along axes 0, 1, 2
IDS = np.array(["a", "b", "c"])


def look(score_a: float = 0.0, score_b: float = 0.0) -> np.ndarray:
    """A unit vector scoring score_a with a and score_b with b (the rest on the free axis 3)."""
    v = np.array([score_a, score_b, 0.0, 0.0], np.float32)
    v[3] = np.sqrt(max(0.0, 1 - (v**2).sum()))
    return v


def tracks() -> Tracks:
    nan = np.full(4, np.nan, np.float32)
    e = np.stack([
        [look(0.9), look(0.5), look(0.7), nan],  # mated a: one great look, one middling, one good; one no face
        [look(0, 0.8), look(0.6), look(0.6), look(0.2)],  # non-mated: one strong look for b, three for a
    ])
    quality = np.array([[3.0, 1.0, 2.0, -np.inf], [1.0, 3.0, 2.0, 0.5]])
    return Tracks(e, quality, np.isfinite(quality), np.array(["a", "x"]), np.array([True, False]))


def test_rule_scores():
    s = rule_scores(tracks(), G, IDS)
    # (hit score of the mated track, alarm score of the non-mated one)
    assert s["one look"][0][0] == pytest.approx(0.9, abs=1e-6) and s["one look"][1][0] == pytest.approx(0.8, abs=1e-6)
    assert s["best look"][0][0] == pytest.approx(0.9, abs=1e-6) and s["best look"][1][0] == pytest.approx(0.8, abs=1e-6)
    assert s["1-of-4"][0][0] == pytest.approx(0.9, abs=1e-6) and s["1-of-4"][1][0] == pytest.approx(0.8, abs=1e-6)
    # 2-of-4: a's second-best look is 0.7; the non-mated track has two looks for a at 0.6, one for b
    assert s["2-of-4"][0][0] == pytest.approx(0.7, abs=1e-6) and s["2-of-4"][1][0] == pytest.approx(0.6, abs=1e-6)
    # its third look for a is the 0.2 one
    assert s["3-of-4"][0][0] == pytest.approx(0.5, abs=1e-6) and s["3-of-4"][1][0] == pytest.approx(0.2, abs=1e-6)
    assert s["4-of-4"][0][0] == -np.inf and s["4-of-4"][1][0] == -np.inf  # a look without a face never counts
    mean_a = (0.9 + 0.5 + 0.7) / np.linalg.norm(look(0.9) + look(0.5) + look(0.7))
    assert s["mean of all looks"][0][0] == pytest.approx(mean_a, abs=1e-5)
    # non-mated, top 3 by quality are looks 1, 2, 0: the 0.2 look (quality 0.5) is left out, and the mean
    # lands on a (two looks at 0.6) with a score below either look
    fused = look(0.6) + look(0.6) + look(0, 0.8)
    assert s["mean of top 3 by quality"][1][0] == pytest.approx(1.2 / np.linalg.norm(fused), abs=1e-5)
    assert s["mean of top 3 by quality"][1][0] < 0.6


def test_threshold_for_tpir_and_equal_tpir_table():
    hit = np.array([0.9, 0.8, 0.7, 0.6, -np.inf])
    assert threshold_for_tpir(hit, 0.4) == pytest.approx(0.8, abs=1e-6)
    assert threshold_for_tpir(hit, 0.8) == pytest.approx(0.6, abs=1e-6)
    assert threshold_for_tpir(hit, 1.0) == -np.inf  # unreachable: one track never alerts
    scores = {"r": (hit, np.array([0.85, 0.65, 0.1, 0.0])), "s": (hit, np.array([0.5, 0.5, 0.5, 0.5]))}
    t = compare_at_tpir(scores, [0.4, 0.8, 1.0])
    assert t["r"]["0.400"] == {"threshold": 0.8, "false_alarms": 1, "fpir": 0.25}
    assert t["r"]["0.800"]["false_alarms"] == 2 and t["s"]["0.800"]["false_alarms"] == 0
    assert t["r"]["1.000"]["fpir"] is None


def test_degrade_is_seeded_and_changes_the_image():
    image = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    a = degrade(image, np.random.default_rng([7, 1]))
    b = degrade(image, np.random.default_rng([7, 1]))
    c = degrade(image, np.random.default_rng([7, 2]))
    assert np.array_equal(a, b)  # the same seed gives the same look
    assert a.shape[0] < 150 and (a.shape != c.shape or not np.array_equal(a, c))


def test_several_photos_street_uses_each_subjects_best_photo():
    from pathlib import Path

    from appliance.evaluation.embed_dataset import DatasetEmbeddings
    from appliance.evaluation.fusion import several_photos
    from appliance.evaluation.lfw import Dataset

    # a has 3 photos (2 enrolled, 1 probe), b has 2 (1 enrolled, 1 probe), x has 1 (non-mated).
    names = ["a", "a", "a", "b", "b", "x"]
    ds = Dataset(Path("."), [f"{n}/{n}_{i:04d}.jpg" for i, n in enumerate(names)], names, [], 0)
    photos = np.stack([look(1.0), look(0.0, 0.0), look(0.9), look(0, 1.0), look(0, 0.9), look(0.3)])
    photos[1] = np.array([0, 0, 1, 0], np.float32)  # a's second photo: along the third axis
    emb = DatasetEmbeddings(ds.images, photos)
    # the one-photo protocol's probes: a's photos 2 and 3, b's photo 2, then x
    probes = np.array([1, 2, 4, 5])
    nan = np.full(4, np.nan, np.float32)
    third = np.array([0, 0, 1, 0], np.float32)
    e = np.stack([
        [third, third, third],  # a's second photo: enrolled in the templates protocol, so not a probe there
        [look(0.2), np.array([0, 0, 0.6, 0.8], np.float32), nan],  # a's 3rd photo: its 2nd look is 0.6 with photo 2
        [look(0, 0.5), look(0, 0.3), look(0, 0.2)],  # b: below 0.6 in every look
        [look(0.7), look(0.1), nan],  # x: one look at 0.7 with a
    ])
    tr = Tracks(e, np.ones((4, 3)), np.ones((4, 3), bool), np.array(names)[probes], np.array([True, True, True, False]))
    out = several_photos(tr, probes, ds, emb, threshold=0.55)
    assert out["mated_tracks"] == 2 and out["non_mated_tracks"] == 1  # a's 3rd photo and b's 2nd; x
    # a's second look matches a's *second* enrolled photo at 0.6: recognised by 1-of-3 but not by the first look
    assert out["one look"] == {"tpir": 0.0, "false_alarms": 1}
    assert out["1-of-3"] == {"tpir": 0.5, "false_alarms": 1}
