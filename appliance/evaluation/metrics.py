"""Verification and open-set identification metrics. Pure numpy, no I/O; tested on constructed examples.

Conventions: scores are cosine similarities; a comparison is "accepted" when score >= threshold.
A missing embedding (no face found) has score -inf: it never matches, honestly counted as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """Standard LFW protocol: per fold, pick the best threshold on the other folds, test on this fold.

    Returns (mean accuracy, std across folds).
    """
    accs = []
    finite = scores[np.isfinite(scores)]
    candidates = np.unique(np.concatenate([finite, [finite.min() - 1e-6, finite.max() + 1e-6]]))
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        accepted = scores[train][:, None] >= candidates[None, :]
        train_acc = (accepted == same[train][:, None]).mean(0)
        thr = candidates[int(np.argmax(train_acc))]
        accs.append(float(((scores[test] >= thr) == same[test]).mean()))
    return float(np.mean(accs)), float(np.std(accs))


def threshold_at_rate(negative_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold at which at most `rate` of the negative scores are accepted (score >= t)."""
    neg = np.sort(negative_scores[np.isfinite(negative_scores)])[::-1]
    n_total = len(negative_scores)
    allowed = int(np.floor(rate * n_total + 1e-9))
    if allowed >= len(neg):
        return float(neg[-1]) if len(neg) else -1.0
    # Accept strictly fewer than allowed+1: the threshold sits just above the (allowed+1)-th highest score.
    return float(np.nextafter(np.float32(neg[allowed]), np.float32(np.inf)))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at a false accept rate over all impostor comparisons."""
    thr = threshold_at_rate(impostor, far)
    return float((genuine >= thr).mean()), thr


@dataclass(frozen=True)
class OpenSetScores:
    """Rank-1 results of probes searched against a gallery."""

    mated_top_score: np.ndarray  # best score of each mated probe (any subject)
    mated_correct: np.ndarray  # bool: rank-1 subject is the right one
    nonmated_top_score: np.ndarray  # best score of each non-mated probe


def tpir_at_threshold(s: OpenSetScores, threshold: float) -> float:
    """True positive identification rate: rank-1 right AND score >= threshold."""
    return float((s.mated_correct & (s.mated_top_score >= threshold)).mean()) if len(s.mated_correct) else 0.0


def fpir_at_threshold(s: OpenSetScores, threshold: float) -> float:
    """False positive identification rate: non-mated probes whose best score reaches the threshold."""
    return float((s.nonmated_top_score >= threshold).mean()) if len(s.nonmated_top_score) else 0.0


def threshold_for_fpir(s: OpenSetScores, fpir: float) -> float:
    return threshold_at_rate(s.nonmated_top_score, fpir)


def open_set_search(gallery: np.ndarray, gallery_ids: np.ndarray, probes: np.ndarray, probe_ids: np.ndarray,
                    mated: np.ndarray, gallery_offsets: np.ndarray | None = None,
                    probe_offsets: np.ndarray | None = None) -> OpenSetScores:
    """Search each probe against the gallery (rows L2-normalised; NaN rows = no face found); scores minus
    the two sides' offsets when given (normalised scores)."""
    valid = ~np.isnan(probes).any(axis=1)
    top = np.full(len(probes), -np.inf, np.float32)
    arg = np.zeros(len(probes), np.int64)
    if valid.any():
        sims = np.nan_to_num(probes[valid], nan=0.0) @ np.nan_to_num(gallery, nan=0.0).T
        if gallery_offsets is not None and probe_offsets is not None:
            sims -= probe_offsets[valid][:, None] + gallery_offsets[None, :]
        sims[:, np.isnan(gallery).any(axis=1)] = -np.inf
        arg[valid] = sims.argmax(axis=1)
        top[valid] = sims.max(axis=1)
    correct = valid & (gallery_ids[arg] == probe_ids)
    return OpenSetScores(top[mated], correct[mated], top[~mated])


def det_curve(genuine: np.ndarray, impostor: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) over thresholds spanning the score range, for the DET plot."""
    imp = impostor[np.isfinite(impostor)]
    thresholds = np.quantile(imp, 1 - np.logspace(-6, 0, points)) if len(imp) else np.linspace(-1, 1, points)
    imp_sorted = np.sort(imp)
    gen_sorted = np.sort(genuine)
    fmr = 1 - np.searchsorted(imp_sorted, thresholds, side="left") / max(len(imp_sorted), 1)
    fnmr = np.searchsorted(gen_sorted, thresholds, side="left") / max(len(gen_sorted), 1)
    return fmr, fnmr
