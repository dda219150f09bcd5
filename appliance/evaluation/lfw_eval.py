"""`appliance eval`: verification and open-set identification accuracy of the whole pipeline on LFW.

Open-set protocol (contract): the first image of every identity with at least two images is enrolled;
the other images of those identities are mated probes; images of identities not enrolled are non-mated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from appliance.evaluation import false_alerts, metrics, tail
from appliance.evaluation.bootstrap import exact_interval
from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.groups import evaluate_groups
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import (
    SEARCHES_PER_PERSON,
    ceil4,
    leave_one_out_searches,
    open_set_split,
    similarities,
)
from appliance.evaluation.templates import evaluate_templates
from appliance.matching.normalise import BackgroundNormaliser
from appliance.vision.types import PipelineFingerprint

FARS = (1e-3, 1e-4, 1e-5)
FPIRS = (1e-2, 1e-3)
TARGET_FPIR = 1e-3  # the shipped threshold keeps false alerts at or below 1 in 1,000 passers-by
FLOOR_FPIR = 1e-2  # configuration may never go where more than 1 in 100 would raise a false alert
LOO_WHAT = ("the threshold's tail is fitted on every non-mated probe and on up to "
            f"{SEARCHES_PER_PERSON} leave-one-out searches per enrolled person (their photos against the gallery "
            "without their own entry); its confidence bound resamples people, each with all their searches")


@dataclass
class Comparisons:
    genuine: np.ndarray
    impostor: np.ndarray
    worst_genuine: list[tuple[float, str, str]]


def all_pairs(emb: DatasetEmbeddings, identity: list[str], worst: int = 12) -> Comparisons:
    """Every genuine pair against every impostor pair (upper triangle of the similarity matrix)."""
    e = emb.embeddings
    sims = similarities(e, emb.offsets)
    ids = np.unique(np.array(identity), return_inverse=True)[1]
    iu, ju = np.triu_indices(len(e), k=1)
    same = ids[iu] == ids[ju]
    values = sims[iu, ju]
    genuine = values[same]
    order = np.argsort(genuine)[:worst]
    gi, gj = iu[same][order], ju[same][order]
    worst_pairs = [(float(genuine[k]), emb.keys[a], emb.keys[b]) for k, a, b in zip(order, gi, gj, strict=True)]
    return Comparisons(genuine, values[~same], worst_pairs)


def open_set(dataset: Dataset, emb: DatasetEmbeddings) -> tuple[metrics.OpenSetScores, int]:
    gallery, mated, nonmated = open_set_split(dataset)
    ids = np.array(dataset.identity)
    probes = np.concatenate([mated, nonmated])
    is_mated = np.zeros(len(probes), bool)
    is_mated[: len(mated)] = True
    off = emb.offset()
    scores = metrics.open_set_search(emb.embeddings[gallery], ids[gallery], emb.embeddings[probes], ids[probes],
                                     is_mated, off[gallery], off[probes])
    return scores, len(gallery)


def pair_scores(dataset: Dataset, emb: DatasetEmbeddings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {k: i for i, k in enumerate(emb.keys)}
    e = emb.embeddings
    a = np.array([index[p.a] for p in dataset.pairs])
    b = np.array([index[p.b] for p in dataset.pairs])
    scores = np.einsum("ij,ij->i", e[a], e[b]) - emb.offset()[a] - emb.offset()[b]
    scores[np.isnan(scores)] = -np.inf
    same = np.array([p.same for p in dataset.pairs])
    folds = np.array([p.fold for p in dataset.pairs])
    return scores, same, folds


def evaluate(dataset: Dataset, emb: DatasetEmbeddings, model_id: str, threshold: float,
             groups: dict[str, set[str]] | None = None,
             normaliser: BackgroundNormaliser | None = None) -> tuple[dict, dict]:
    """The eval JSON (contract) and the raw material for the report.

    With `groups` (name -> image file names), per-group figures are added under "groups" and the
    calibration becomes equitable: the lowest threshold at which every group's FPIR meets the target.
    """
    result: dict = {
        "model": model_id,
        "threshold": round(threshold, 4),
        "images": len(dataset.images),
        "no_face": len(emb.no_face),
    }
    if dataset.pairs:
        scores, same, folds = pair_scores(dataset, emb)
        acc, std = metrics.kfold_accuracy(scores, same, folds)
        result["pairs"] = {"accuracy": round(acc, 5), "std": round(std, 5), "folds": int(dataset.folds),
                           "pairs": len(dataset.pairs)}
    comps = all_pairs(emb, dataset.identity)
    tar = {}
    far_thresholds = {}
    for far in FARS:
        t, thr = metrics.tar_at_far(comps.genuine, comps.impostor, far)
        tar[f"{far:.0e}".replace("e-0", "e-")] = round(t, 5)
        far_thresholds[f"{far:.0e}".replace("e-0", "e-")] = round(thr, 4)
    result["tar_at_far"] = tar
    result["all_pairs"] = {"genuine": len(comps.genuine), "impostor": len(comps.impostor),
                           "threshold_at_far": far_thresholds}
    os_scores, gallery_size = open_set(dataset, emb)
    # The operating point from the fitted tail of the non-mated searches, not one extreme face (tail.py): the
    # non-mated probes and the leave-one-out searches of the enrolled people (protocol.py).
    loo_images, loo_top = leave_one_out_searches(dataset, emb)
    searches = np.concatenate([os_scores.nonmated_top_score, loo_top])
    ids = np.array(dataset.identity)
    people = np.concatenate([ids[open_set_split(dataset)[2]], ids[loo_images]])  # who made each search
    calibrated_fit = tail.tail_threshold(searches, TARGET_FPIR, people=people)
    calibrated = calibrated_fit.upper  # the one-sided 95 % bound ships; the point estimate is reported beside it
    floor = tail.tail_threshold(searches, FLOOR_FPIR, people=people).value
    result["open_set"] = {
        "gallery_size": gallery_size,
        "mated_probes": len(os_scores.mated_top_score),
        "non_mated_probes": len(os_scores.nonmated_top_score),
        "tpir_at_fpir": {
            f"{f:.0e}".replace("e-0", "e-"): round(
                metrics.tpir_at_threshold(os_scores, metrics.threshold_for_fpir(os_scores, f)), 5)
            for f in FPIRS
        },
        "tpir_at_threshold": round(metrics.tpir_at_threshold(os_scores, threshold), 5),
        "fpir_at_threshold": round(metrics.fpir_at_threshold(os_scores, threshold), 6),
        "rank1": round(float(os_scores.mated_correct.mean()), 5),
    }
    result["calibration"] = {
        "target_fpir": TARGET_FPIR,
        "threshold": ceil4(calibrated),
        "threshold_point": round(calibrated_fit.value, 4),
        "threshold_ci95": [round(calibrated_fit.ci95[0], 4), round(calibrated_fit.ci95[1], 4)],
        "estimator": tail.ESTIMATOR,
        "searches": {"non_mated_probes": len(os_scores.nonmated_top_score), "leave_one_out": len(loo_top),
                     "leave_one_out_people": len(np.unique(ids[loo_images])),
                     "leave_one_out_at_threshold": int((loo_top >= threshold).sum()), "what": LOO_WHAT},
        "empirical_threshold": ceil4(calibrated_fit.empirical),
        "floor_fpir": FLOOR_FPIR,
        "floor": ceil4(floor),
    }
    raw = {"comparisons": comps, "open_set": os_scores, "no_face": emb.no_face}
    if groups:
        result["groups"], raw["groups"] = evaluate_groups(dataset, emb, groups, threshold, TARGET_FPIR, FLOOR_FPIR,
                                                          extra_searches=(loo_images, loo_top))
        eq = result["groups"]["calibration"]
        result["calibration"].update({
            "method": "equitable: every group's FPIR at or below the target",
            "pooled_threshold": result["calibration"]["threshold"],
            "pooled_floor": result["calibration"]["floor"],
            "pooled_threshold_ci95": result["calibration"]["threshold_ci95"],
            "threshold": eq["threshold"],
            "threshold_point": eq["threshold_point"],
            "threshold_ci95": eq["threshold_ci95"],
            "empirical_threshold": eq["empirical_threshold"],
            "floor": eq["floor"],
        })
    else:
        result["calibration"]["method"] = "pooled: FPIR over all non-mated probes at or below the target"
    image_identity = np.unique(np.array(dataset.identity), return_inverse=True)[1]
    fmr = false_alerts.per_comparison_fmr(emb.embeddings, image_identity, threshold, offsets=emb.offsets)
    result["false_alerts"] = false_alerts.false_alert_table(emb.embeddings, image_identity, threshold, fmr,
                                                            offsets=emb.offsets)
    cal_t = result["calibration"]["threshold"]
    cal_fmr = fmr if cal_t == round(threshold, 4) else false_alerts.per_comparison_fmr(
        emb.embeddings, image_identity, cal_t, offsets=emb.offsets)
    result["calibration"]["fmr_per_comparison"] = {
        "value": cal_fmr["value"], "false_matches": cal_fmr["false_matches"],
        "comparisons": cal_fmr["comparisons"], "ci95": cal_fmr["ci95"]}
    result["quality_gate"] = dict(emb.quality_reasons)
    result["templates"] = evaluate_templates(dataset, emb, threshold, normaliser, TARGET_FPIR)
    return result, raw


def manifest_calibration(result: dict, dataset_name: str, command: str,
                         pipeline: PipelineFingerprint | None = None) -> dict:
    """The [calibration] table `--calibrate` writes into the manifest: the operating point and its evidence.

    `pipeline` is the fingerprint of what measured it (vision/fingerprint.py): the daemon and the self-test
    compare it with what they run.
    """
    cal = result["calibration"]
    evidence = {
        "method": cal["method"],
        "scores": result.get("scores", "cosine similarity (raw)"),  # the scale the threshold is on
        "estimator": cal["estimator"],
        "threshold_point": cal["threshold_point"],
        "threshold_ci95": cal["threshold_ci95"],
        "empirical_threshold": cal["empirical_threshold"],
        "dataset": dataset_name,
        "images": result["images"],
        "no_face": result["no_face"],
        "gallery_size": result["open_set"]["gallery_size"],
        "mated_probes": result["open_set"]["mated_probes"],
        "non_mated_probes": result["open_set"]["non_mated_probes"],
        "leave_one_out_searches": cal["searches"]["leave_one_out"],
        "leave_one_out_people": cal["searches"]["leave_one_out_people"],
        "searches": cal["searches"]["what"],
        "floor_fpir": cal["floor_fpir"],
        "tar_at_far": result["tar_at_far"],
        "pairs_accuracy": result.get("pairs", {}).get("accuracy"),
        # per-comparison FMR at the threshold: the daemon derives expected false alerts per face from it
        # for any watchlist size (appliance.evaluation.false_alerts), without LFW
        "fmr_per_comparison": cal["fmr_per_comparison"]["value"],
        "fmr_false_matches": cal["fmr_per_comparison"]["false_matches"],
        "fmr_comparisons": cal["fmr_per_comparison"]["comparisons"],
        "fmr_ci95": cal["fmr_per_comparison"]["ci95"],  # never [0, 0]: at least the exact binomial interval
        "command": command,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if "groups" in result:
        g = result["groups"]["calibration"]
        evidence["pooled_threshold"] = cal["pooled_threshold"]
        evidence["pooled_floor"] = cal["pooled_floor"]
        evidence["groups"] = {
            name: {"identities": result["groups"]["per_group"][name]["identities"],
                   "images": result["groups"]["per_group"][name]["images"],
                   "non_mated_probes": fp["probes"], "false_alarms_at_threshold": fp["false_alarms"],
                   "threshold_alone": g["threshold_per_group"][name],
                   "threshold_alone_ci95": g["tail_per_group"][name]["ci95"],
                   "threshold_alone_empirical": g["threshold_per_group_empirical"][name],
                   # the exact binomial interval of the false alarms seen at the threshold (zero is not [0, 0])
                   "fpir_ci95": [round(x, 6) for x in exact_interval(fp["false_alarms"], fp["probes"])]}
            for name, fp in g["fpir_per_group"].items()
        }
        evidence["binding_group"] = g["binding_group"]
        d = g["fpir_differential"]
        evidence["fpir_differential"] = {"ratio": d["ratio"] if d["ratio"] is not None else "undefined (a group has 0)",
                                         "ratio_smoothed": d["ratio_smoothed"]}
    if pipeline:
        evidence["pipeline"] = pipeline
    evidence = {k: v for k, v in evidence.items() if v is not None}  # TOML has no null
    return {"threshold": cal["threshold"], "floor": cal["floor"], "target_fpir": cal["target_fpir"],
            "evidence": evidence}
