"""Expected false alerts per face seen, for a watchlist of a given size, at the shipped threshold.

A passer-by who is not on the watchlist is compared with every one of its N subjects. If one comparison
of two different people reaches the threshold with probability p (the per-comparison false match rate,
measured on LFW and stored in the manifest's calibration evidence), the chance that at least one of the
N does is 1 - (1 - p)^N. That assumes the N comparisons are independent; the empirical estimate below
(sampling watchlists of that size from LFW and searching the faces not on them) checks it where LFW is
big enough. The daemon and the console can call `expected_false_alerts_per_face` without LFW.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from appliance.errors import ApplianceError
from appliance.evaluation import bootstrap
from appliance.evaluation.groups import pair_counts
from appliance.evaluation.protocol import similarities

WATCHLIST_SIZES = (100, 1_000, 2_500, 10_000)  # 2,500: the most LFW can measure
PER_FACES = 10_000  # figures are given per 10,000 faces seen


def per_face(p: float, watchlist_size: int) -> float:
    """P(at least one of N independent comparisons reaches the threshold) = 1 - (1 - p)^N."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"per-comparison false match rate {p} is not a probability")
    if watchlist_size < 0:
        raise ValueError(f"watchlist size {watchlist_size} is negative")
    if p == 1.0:
        return 1.0 if watchlist_size else 0.0
    return -math.expm1(watchlist_size * math.log1p(-p))


def expected_false_alerts_per_face(watchlist_size: int, manifest_calibration: Any) -> float:
    """Expected false alerts per face seen (not on the list) for a watchlist of `watchlist_size` subjects.

    manifest_calibration: a model's `Calibration` (appliance.runtime.manifest) or its [calibration] table;
    its evidence must hold `fmr_per_comparison` (written by `appliance eval --calibrate`).
    Multiply by 10,000 for false alerts per 10,000 faces.
    """
    evidence = getattr(manifest_calibration, "evidence", None)
    if evidence is None and isinstance(manifest_calibration, Mapping):
        evidence = manifest_calibration.get("evidence")
    p = evidence.get("fmr_per_comparison") if isinstance(evidence, Mapping) else None
    if p is None:
        raise ApplianceError("the model's calibration has no fmr_per_comparison: re-run `appliance eval --calibrate`")
    return per_face(float(p), int(watchlist_size))


def per_comparison_fmr(embeddings: np.ndarray, image_identity: np.ndarray, threshold: float,
                       resamples: int = bootstrap.RESAMPLES, seed: int = bootstrap.SEED,
                       offsets: np.ndarray | None = None) -> dict:
    """FMR over every impostor pair at the threshold, with an interval: the identity bootstrap widened to the
    exact binomial one where that is wider (never [0, 0] when no false match is seen)."""
    n_id = int(image_identity.max()) + 1
    pc = pair_counts(similarities(embeddings, offsets), image_identity, n_id, threshold)
    pairs = bootstrap.ImpostorPairs(pc.images, pc.images, pc.impostor_a, pc.impostor_b, pc.impostor_count, True)
    c, n = (float(x[0]) for x in pairs.counts(bootstrap.ones(n_id)))
    num, den = pairs.counts(bootstrap.identity_weights(np.zeros(n_id, np.int64), resamples, seed))
    lo, hi = bootstrap.error_interval(num / den, int(c), int(n))
    return {"value": c / n, "false_matches": int(c), "comparisons": int(n), "ci95": [lo, hi]}


def empirical_per_face(embeddings: np.ndarray, image_identity: np.ndarray, threshold: float, size: int,
                       samples: int = 50, seed: int = bootstrap.SEED, offsets: np.ndarray | None = None) -> dict | None:
    """Sample watchlists of `size` people (one photo each) and search every face of the people not on it.

    None when the dataset has too few people (at least 100 faces must stay off the list).
    """
    valid = ~np.isnan(embeddings).any(axis=1)
    people = np.unique(image_identity[valid])
    if len(people) - size < 100:
        return None
    first = {}
    for i in np.flatnonzero(valid):
        first.setdefault(int(image_identity[i]), i)
    rng = np.random.default_rng(seed)
    off_all = offsets if offsets is not None else np.zeros(len(embeddings), np.float32)
    alerts = faces = 0
    for _ in range(samples):
        listed = rng.choice(people, size, replace=False)
        rows = [first[int(p)] for p in listed]
        watch = embeddings[rows]
        off = valid & ~np.isin(image_identity, listed)
        best = (embeddings[off] @ watch.T - off_all[off][:, None] - off_all[rows][None, :]).max(axis=1)
        alerts += int((best >= threshold).sum())
        faces += int(off.sum())
    return {"false_alerts": alerts, "faces": faces, "per_face": alerts / faces, "samples": samples}


def false_alert_table(embeddings: np.ndarray, image_identity: np.ndarray, threshold: float, fmr: dict,
                      sizes: tuple[int, ...] = WATCHLIST_SIZES, offsets: np.ndarray | None = None) -> dict:
    """Expected false alerts per 10,000 faces per watchlist size: formula (with the FMR interval) and,
    where the dataset is big enough, measured."""
    rows = {}
    for n in sizes:
        lo, hi = fmr["ci95"]
        row = {
            "model_per_10000": round(PER_FACES * per_face(fmr["value"], n), 3),
            "model_ci95_per_10000": [round(PER_FACES * per_face(lo, n), 3), round(PER_FACES * per_face(hi, n), 3)],
        }
        emp = empirical_per_face(embeddings, image_identity, threshold, n, offsets=offsets)
        if emp is not None:
            row["measured_per_10000"] = round(PER_FACES * emp["per_face"], 3)
            row["measured"] = {k: emp[k] for k in ("false_alerts", "faces", "samples")}
        else:
            row["measured_per_10000"] = None  # more people than the dataset has: the model extrapolates
        rows[str(n)] = row
    return {"threshold": round(threshold, 4), "fmr_per_comparison": fmr, "per_watchlist_size": rows}
