"""A threshold that does not hang on one face: the FPIR target read off a fitted tail of non-mated scores.

The plain estimator ("the lowest threshold at which at most rate x n probes are accepted") is an order
statistic. At FPIR 1e-3 with a few hundred non-mated probes it is the single highest score of one group, so
any numeric change (JPEG decoding, resizing, the interpreter) that moves that one face moves the threshold the
van uses in the street.

Instead: peaks over a high threshold. Take the top k non-mated top scores (the tail, k = 10 % of the probes,
at least 25), let u be the next score below them, and model the excesses over u as exponential with scale
beta = their mean (its maximum-likelihood estimate). Then

    P(score > t) ~= (k / n) * exp(-(t - u) / beta)         so   t(rate) = u + beta * ln(k / (n * rate))

Every one of the k scores moves the estimate by 1/k of its own change, not all of it. The exponential tail
(generalised Pareto with shape 0) is the conservative choice: cosine scores are bounded above, so their
true tail is lighter (shape < 0) and the real FPIR at t is at most the target (checked on LFW in
docs/accuracy.md). The uncertainty comes from resampling the probes (each non-mated probe is a different
person in the LFW protocol): a 95 % interval of the threshold, reported beside it.

The threshold that ships is the one-sided 95 % upper confidence bound, not the point estimate: the van then
meets the FPIR target with 95 % confidence under the tail model, rather than only on average. The bound is
a percentile over a thousand refits, each using every tail score, so it is as stable as the fit itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.evaluation import metrics

TAIL_FRACTION = 0.10
MIN_TAIL = 25
RESAMPLES = 1000
SEED = 20261203  # fixed: the same scores give the same interval, run after run
CONFIDENCE = 0.95  # the shipped threshold is this one-sided upper confidence bound
ESTIMATOR = (f"tail: exponential excesses over the top {TAIL_FRACTION:.0%} of non-mated top scores "
             f"(at least {MIN_TAIL}); shipped at the one-sided {CONFIDENCE:.0%} upper bound over {RESAMPLES} "
             "resampled probe sets")


@dataclass(frozen=True)
class TailThreshold:
    value: float  # the threshold estimate
    ci95: tuple[float, float]  # over resampled probes
    upper: float  # the one-sided CONFIDENCE upper bound: what ships
    empirical: float  # the order-statistic threshold, for comparison
    method: str  # "tail" or "empirical" (too few scores for a tail, or the rate lies inside the data)
    probes: int
    tail: int  # k
    tail_start: float  # u
    scale: float  # beta


def _fit(sorted_desc: np.ndarray, n: int, rate: float) -> tuple[float, int, float, float] | None:
    """(threshold, k, u, beta) from finite scores sorted high to low, out of n probes; None if no tail fits."""
    k = max(MIN_TAIL, math.ceil(TAIL_FRACTION * n))
    if len(sorted_desc) <= k or k <= n * rate:
        return None
    u = float(sorted_desc[k])
    beta = float(np.mean(sorted_desc[:k] - u))
    if beta <= 0:
        return None
    return u + beta * math.log(k / (n * rate)), k, u, beta


def _estimate(scores: np.ndarray, rate: float) -> tuple[float, str, int, float, float]:
    finite = np.sort(scores[np.isfinite(scores)])[::-1]
    fit = _fit(finite, len(scores), rate)
    if fit is None:
        return metrics.threshold_at_rate(scores, rate), "empirical", 0, float("nan"), float("nan")
    t, k, u, beta = fit
    return t, "tail", k, u, beta


def tail_threshold(scores: np.ndarray, rate: float, resamples: int = RESAMPLES, seed: int = SEED) -> TailThreshold:
    """The threshold at which `rate` of these non-mated top scores would be accepted, with its interval.

    Scores of -inf (no face found) count as probes that never match, as in FPIR itself.
    """
    scores = np.asarray(scores, np.float64)
    value, method, k, u, beta = _estimate(scores, rate)
    boot = bootstrap_values(scores, rate, resamples, seed)
    lo, hi, upper = np.percentile(boot, [2.5, 97.5, CONFIDENCE * 100]) if len(boot) else (value, value, value)
    return TailThreshold(float(value), (float(lo), float(hi)), float(upper), metrics.threshold_at_rate(scores, rate),
                         method, len(scores), k, u, beta)


def bootstrap_values(scores: np.ndarray, rate: float, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The estimate on `resamples` resamples (with replacement) of the probes."""
    if not len(scores) or resamples <= 0:
        return np.array([])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(scores), size=(resamples, len(scores)))
    return np.array([_estimate(scores[d], rate)[0] for d in draws])


@dataclass(frozen=True)
class EquitableThreshold:
    value: float  # the highest group point estimate
    ci95: tuple[float, float]
    upper: float  # one-sided CONFIDENCE bound that every group meets the target at: what ships
    per_group: dict[str, TailThreshold]


def equitable_tail_threshold(nonmated_top: dict[str, np.ndarray], rate: float, resamples: int = RESAMPLES,
                             seed: int = SEED) -> EquitableThreshold:
    """The equitable rule on tail estimates: the highest group threshold, so every group meets the target.

    Its interval and bound resample every group at once and take the maximum each time.
    """
    per_group = {g: tail_threshold(s, rate, resamples, seed) for g, s in nonmated_top.items()}
    value = max(t.value for t in per_group.values())
    boots = [bootstrap_values(np.asarray(s, np.float64), rate, resamples, seed + i)
             for i, s in enumerate(nonmated_top.values())]
    boots = [b for b in boots if len(b)]
    if not boots:
        return EquitableThreshold(value, (value, value), value, per_group)
    joint = np.max(np.vstack(boots), axis=0)
    lo, hi, upper = np.percentile(joint, [2.5, 97.5, CONFIDENCE * 100])
    return EquitableThreshold(value, (float(lo), float(hi)), float(upper), per_group)


def predicted_rate(t: TailThreshold, threshold: float) -> float | None:
    """The tail model's FPIR at another threshold (None when the estimate was empirical)."""
    if t.method != "tail" or threshold < t.tail_start:
        return None
    return (t.tail / t.probes) * math.exp(-(threshold - t.tail_start) / t.scale)


def summary(t: TailThreshold) -> dict:
    """The JSON/TOML form of one estimate (no NaN: an empirical fallback has no tail)."""
    out = {"threshold": round(t.value, 4), "ci95": [round(t.ci95[0], 4), round(t.ci95[1], 4)],
           "upper": round(t.upper, 4),
           "empirical": round(t.empirical, 4), "method": t.method, "probes": t.probes}
    if t.method == "tail":
        out |= {"tail": t.tail, "tail_start": round(t.tail_start, 4), "scale": round(t.scale, 5)}
    return out
