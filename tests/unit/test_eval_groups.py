"""Per-group arithmetic on small constructed examples where every right answer is worked out by hand."""

from pathlib import Path

import numpy as np
import pytest

from appliance.errors import ApplianceError
from appliance.evaluation import bootstrap
from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.groups import (
    assign_groups,
    equitable_threshold,
    evaluate_groups,
    impostor_pairs,
    load_group_files,
    pair_counts,
)
from appliance.evaluation.lfw import Dataset

# -- a hand-made similarity matrix -----------------------------------------------------------------------
# images: 0,1 = A   2 = B   3,4 = C   5 = D;  A, B in group 0 ("f"); C, D in group 1 ("m")
IMAGE_IDENTITY = np.array([0, 0, 1, 2, 2, 3])
GROUP = np.array([0, 0, 1, 1])
ACCEPTED = [(0, 1), (0, 2), (3, 5), (4, 5), (2, 3)]  # A-A genuine; A-B in f; C-D twice in m; B-C across


def sims_matrix() -> np.ndarray:
    s = np.full((6, 6), 0.1, np.float32)
    for i, j in ACCEPTED:
        s[i, j] = s[j, i] = 0.9
    np.fill_diagonal(s, 1.0)
    return s


def test_pair_counts_genuine_and_impostor():
    pc = pair_counts(sims_matrix(), IMAGE_IDENTITY, 4, 0.5)
    assert pc.genuine_total.tolist() == [1, 0, 1, 0]  # A and C have one genuine pair each
    assert pc.genuine_accepted.tolist() == [1, 0, 0, 0]  # A's is accepted, C's (3,4) is not
    got = {(int(a), int(b)): int(c) for a, b, c in zip(pc.impostor_a, pc.impostor_b, pc.impostor_count, strict=True)}
    assert got == {(0, 1): 1, (2, 3): 2, (1, 2): 1}


def test_within_and_cross_group_fmr():
    pc = pair_counts(sims_matrix(), IMAGE_IDENTITY, 4, 0.5)
    one = bootstrap.ones(4)
    # f: A (2 images) x B (1) = 2 impostor pairs, 1 accepted; m: C (2) x D (1) = 2 pairs, both accepted
    assert impostor_pairs(pc, GROUP, 0, 0).rate(one)[0] == pytest.approx(0.5)
    assert impostor_pairs(pc, GROUP, 1, 1).rate(one)[0] == pytest.approx(1.0)
    # across: 3 f images x 3 m images = 9 pairs, 1 accepted (B-C)
    assert impostor_pairs(pc, GROUP, 0, 1).counts(one) == (pytest.approx([1]), pytest.approx([9]))


def test_bootstrap_weights_count_pairs_between_distinct_people_only():
    pc = pair_counts(sims_matrix(), IMAGE_IDENTITY, 4, 0.5)
    # B drawn twice: f has A x B twice = 4 pairs, 2 accepted; across: (2 + 2) f images x 3 m images, B-C twice
    w = np.array([[1.0, 2.0, 1.0, 1.0]])
    num, den = impostor_pairs(pc, GROUP, 0, 0).counts(w)
    assert (num[0], den[0]) == (2, 4)
    num, den = impostor_pairs(pc, GROUP, 0, 1).counts(w)
    assert (num[0], den[0]) == (2, 12)
    # only A drawn (twice): its copies are the same person, so f has no impostor pair at all
    w = np.array([[2.0, 0.0, 1.0, 1.0]])
    assert np.isnan(impostor_pairs(pc, GROUP, 0, 0).rate(w)[0])


def test_equitable_threshold_is_the_strictest_group():
    scores = {"f": np.array([0.9, 0.5, 0.4], np.float32), "m": np.array([0.7, 0.6, 0.3, 0.2], np.float32)}
    t, per = equitable_threshold(scores, 0.0)
    assert per["f"] > 0.9 and 0.7 < per["m"] < 0.9
    assert t == per["f"]
    assert all((s >= t).mean() <= 0.0 for s in scores.values())
    assert (scores["f"] >= per["m"]).mean() > 0  # the pooled or the other group's point would fail f


def test_assign_groups_majority_inheritance_and_even_split():
    keys = ["A/A_0001.jpg", "A/A_0002.jpg", "A/A_0003.jpg", "B/B_0001.jpg", "C/C_0001.jpg", "C/C_0002.jpg",
            "D/D_0001.jpg"]
    files = {"f": {"A_0001.jpg", "A_0002.jpg", "C_0001.jpg"}, "m": {"B_0001.jpg", "A_0003.jpg", "C_0002.jpg"}}
    ga = assign_groups(keys, [k.split("/")[0] for k in keys], files)
    assert ga.names == ["f", "m"] and ga.identities == ["A", "B", "C", "D"]
    assert ga.identity_group.tolist() == [0, 1, -1, -1]  # A by 2 votes to 1; C split evenly; D unlisted
    assert ga.stats["images_relabelled"] == 1  # A_0003 listed as m, counted in f with its person
    assert ga.stats["identities_split_evenly"] == 1 and ga.stats["images_in_no_group"] == 3


def test_load_group_files(tmp_path: Path):
    (tmp_path / "f.txt").write_text("A_0001.jpg\nA/A_0002.jpg\n\n")
    (tmp_path / "m.txt").write_text("B_0001.jpg\n")
    groups = load_group_files([tmp_path / "f.txt", tmp_path / "m.txt"])
    assert groups == {"f": {"A_0001.jpg", "A_0002.jpg"}, "m": {"B_0001.jpg"}}
    with pytest.raises(ApplianceError, match="at least two"):
        load_group_files([tmp_path / "f.txt"])
    with pytest.raises(ApplianceError, match="not found"):
        load_group_files([tmp_path / "f.txt", tmp_path / "x.txt"])
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ApplianceError, match="no image names"):
        load_group_files([tmp_path / "f.txt", tmp_path / "empty.txt"])


# -- a whole evaluation on a constructed dataset ------------------------------------------------------------
def unit(*v: float) -> np.ndarray:
    x = np.array(v, np.float32)
    return x / np.linalg.norm(x)


def constructed():
    """F1 (2 photos), M1 (2) are enrolled; F2, M2, M3 are not. Scores worked out by hand in the test."""
    e1, e2, e3, e4 = unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)
    rows = {
        "F1/F1_0001.jpg": e1, "F1/F1_0002.jpg": e1,  # genuine 1.0
        "F2/F2_0001.jpg": unit(0.8, 0, 0, 0.6),  # 0.8 with F1: a false match in f
        "M1/M1_0001.jpg": e2, "M1/M1_0002.jpg": unit(0, 1, 1, 0),  # genuine 0.707
        "M2/M2_0001.jpg": e3,  # 0.707 with M1_0002 (below 0.75), 0 with the gallery
        "M3/M3_0001.jpg": e4,  # 0.6 with F2 (a cross-group pair below 0.75)
    }
    keys = sorted(rows)
    ds = Dataset(Path("/nowhere"), keys, [k.split("/")[0] for k in keys], [], 0)
    emb = DatasetEmbeddings(keys, np.stack([rows[k] for k in keys]))
    files = {"f": {"F1_0001.jpg", "F1_0002.jpg", "F2_0001.jpg"},
             "m": {"M1_0001.jpg", "M1_0002.jpg", "M2_0001.jpg", "M3_0001.jpg"}}
    return ds, emb, files


def test_evaluate_groups_on_a_constructed_dataset():
    ds, emb, files = constructed()
    res, raw = evaluate_groups(ds, emb, files, threshold=0.75, target_fpir=0.4, floor_fpir=0.9, resamples=200)
    f, m = res["per_group"]["f"], res["per_group"]["m"]
    assert (f["identities"], f["images"], m["identities"], m["images"]) == (2, 3, 3, 4)
    assert (f["tar"]["accepted"], f["tar"]["pairs"], m["tar"]["accepted"], m["tar"]["pairs"]) == (1, 1, 0, 1)
    assert (f["fmr"]["false_matches"], f["fmr"]["pairs"]) == (2, 2)  # F1 (2 photos) x F2, both 0.8
    assert (m["fmr"]["false_matches"], m["fmr"]["pairs"]) == (0, 5)  # 2 + 2 + 1 pairs, none >= 0.75
    assert m["fmr"]["ci95"][1] == pytest.approx(1 - 0.025 ** (1 / 5), rel=1e-6)  # exact, not [0, 0]
    cross = res["cross_group"]["f-m"]["fmr"]
    assert (cross["false_matches"], cross["pairs"]) == (0, 12)
    assert (f["tpir"]["hits"], f["tpir"]["probes"], m["tpir"]["hits"], m["tpir"]["probes"]) == (1, 1, 0, 1)
    assert (f["fpir"]["false_alarms"], f["fpir"]["probes"]) == (1, 1)  # F2 reaches F1 at 0.8
    assert (m["fpir"]["false_alarms"], m["fpir"]["probes"]) == (0, 2)
    d = res["differential"]["fmr"]
    assert d["ratio"] is None and d["highest"] == "f" and d["lowest"] == "m"  # m has no false match
    assert d["ratio_smoothed"] == pytest.approx((2.5 / 2.5) / (0.5 / 5.5), rel=1e-3)
    # FPIR <= 0.4: f has one non-mated probe (none may alarm: above 0.8), m two (none may: above 0)
    c = res["calibration"]
    assert c["binding_group"] == "f" and c["threshold"] == pytest.approx(0.8001)
    assert c["fpir_per_group"]["f"]["false_alarms"] == 0
    assert set(raw["curves"]["fmr"]) == {"f", "m"}
    at = next(r for r in res["by_threshold"] if r["threshold"] == 0.75)  # the same counts, read off the curves
    assert at["fmr"]["f"] == {"false_matches": 2, "pairs": 2} and at["fpir"]["m"] == {"false_alarms": 0, "probes": 2}
    loose = next(r for r in res["by_threshold"] if r["threshold"] == 0.55)  # M2-M1_2 (0.707) counts now
    assert loose["fmr"]["m"]["false_matches"] == 1 and loose["fmr"]["f"]["false_matches"] == 2


def test_intervals_contain_the_point_and_are_reproducible():
    ds, emb, files = constructed()
    a, _ = evaluate_groups(ds, emb, files, 0.75, 0.4, 0.9, resamples=200, seed=1)
    b, _ = evaluate_groups(ds, emb, files, 0.75, 0.4, 0.9, resamples=200, seed=1)
    assert a == b
    for g in a["per_group"].values():
        for metric in ("tar", "fmr", "tpir", "fpir"):
            lo, hi = g[metric]["ci95"]
            assert lo <= g[metric]["value"] <= hi


def test_a_group_without_non_mated_probes_reports_null_not_nan(tmp_path: Path):
    import json

    from appliance.evaluation.report import groups_section, summary_lines

    ds, emb, files = constructed()
    keep = [i for i, k in enumerate(ds.images) if not k.startswith(("M2", "M3"))]  # m: only M1, enrolled
    ds = Dataset(ds.root, [ds.images[i] for i in keep], [ds.identity[i] for i in keep], [], 0)
    emb = DatasetEmbeddings(ds.images, emb.embeddings[keep])
    res, raw = evaluate_groups(ds, emb, files, 0.75, 0.4, 0.9, resamples=50)
    fpir = res["per_group"]["m"]["fpir"]
    assert fpir["probes"] == 0 and fpir["value"] is None and fpir["ci95"] == [None, None]
    assert res["differential"]["fpir"]["ratio_smoothed"] is None
    json.dumps(res, allow_nan=False)  # valid JSON: no NaN anywhere
    lines = groups_section({"groups": res}, {"groups": raw}, tmp_path)
    assert any("no differential" in line for line in lines) and (tmp_path / "groups_ci.png").is_file()
    assert any("FPIR — (0/0)" in line for line in summary_lines({"groups": res, "calibration": res["calibration"]}))
