"""A threshold that does not hang on one face: the FPIR target read off a smoothed tail of non-mated scores.

The plain estimator ("the lowest threshold at which at most rate x n probes are accepted") is an order
statistic. At FPIR 1e-3 with a few hundred non-mated probes it is the single highest score of one group, so
any numeric change (JPEG decoding, resizing, the interpreter) that moves that one face moves the threshold the
van uses in the street, and so does the luck of which faces were in the evaluation.

Instead: peaks over a high threshold, smoothed over the choice of tail. For a tail of the top k non-mated
top scores, let u be the next score below them and model the excesses over u as exponential with scale
beta = their mean (its maximum-likelihood estimate); then

    P(score > t) ~= (k / n) * exp(-(t - u) / beta)         so   t_k(rate) = u + beta * ln(k / (n * rate))

One k hangs on one u; the estimate is the mean of t_k over k from 5 % to 30 % of the probes (at least 25),
so every one of the top third of the scores pulls a little and none pulls alone. The exponential tail
(generalised Pareto with shape 0) is the conservative choice: cosine scores are bounded above, so their true
tail is lighter. Measured on LFW (docs/accuracy.md): under the score changes between two OpenCV builds this
moves about half as much as the order statistic, and over resampled probes a quarter as much.

The threshold that ships is the one-sided 95 % upper confidence bound over resampled sets of people, not the
point estimate: the van then meets the FPIR target with 95 % confidence under the tail model, rather than only
on average. A person may stand behind several searches (several photos, each searched against a list without
them); their searches are alike, so they are resampled together (a cluster bootstrap): counting them as
independent would make the interval too narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.evaluation import metrics

TAIL_FRACTIONS = tuple(round(0.05 + 0.025 * i, 3) for i in range(11))  # 5 % ... 30 % of the probes
MIN_TAIL = 25
RESAMPLES = 1000
SEED = 20261203  # fixed: the same scores give the same interval, run after run
CONFIDENCE = 0.95  # the shipped threshold is this one-sided upper confidence bound
ESTIMATOR = (f"tail: exponential excesses over the top k non-mated top scores, averaged over k = "
             f"{TAIL_FRACTIONS[0]:.0%}..{TAIL_FRACTIONS[-1]:.0%} of the probes (at least {MIN_TAIL}); shipped at the "
             f"one-sided {CONFIDENCE:.0%} upper bound over {RESAMPLES} resamples of the people searched (each "
             f"person's searches together)")


@dataclass(frozen=True)
class TailThreshold:
    value: float  # the threshold estimate
    ci95: tuple[float, float]  # over resampled probes
    upper: float  # the one-sided CONFIDENCE upper bound: what ships
    empirical: float  # the order-statistic threshold, for comparison
    method: str  # "tail" or "empirical" (too few scores for a tail, or the rate lies inside the data)
    probes: int
    tail: int  # k of the middle tail size (for the record)
    tail_start: float  # its u
    scale: float  # its beta


def _fit(sorted_desc: np.ndarray, n: int, rate: float, fraction: float) -> tuple[float, int, float, float] | None:
    """(threshold, k, u, beta) from finite scores sorted high to low, out of n probes; None if no tail fits."""
    k = max(MIN_TAIL, math.ceil(fraction * n))
    if len(sorted_desc) <= k or k <= n * rate:
        return None
    u = float(sorted_desc[k])
    beta = float(np.mean(sorted_desc[:k] - u))
    if beta <= 0:
        return None
    return u + beta * math.log(k / (n * rate)), k, u, beta


def _estimate(scores: np.ndarray, rate: float) -> tuple[float, str, int, float, float]:
    """(threshold, method, k, u, beta): the mean over the tail sizes; k, u, beta of the middle one."""
    finite = np.sort(scores[np.isfinite(scores)])[::-1]
    fits = [f for f in (_fit(finite, len(scores), rate, fr) for fr in TAIL_FRACTIONS) if f is not None]
    if len(fits) < len(TAIL_FRACTIONS):  # too few scores, or the rate lies inside the data: no extrapolation
        return metrics.threshold_at_rate(scores, rate), "empirical", 0, float("nan"), float("nan")
    _, k, u, beta = fits[len(fits) // 2]
    return float(np.mean([f[0] for f in fits])), "tail", k, u, beta


def tail_threshold(scores: np.ndarray, rate: float, resamples: int = RESAMPLES, seed: int = SEED,
                   people: np.ndarray | None = None) -> TailThreshold:
    """The threshold at which `rate` of these non-mated top scores would be accepted, with its interval.

    Scores of -inf (no face found) count as probes that never match, as in FPIR itself. `people[i]` names who
    made search i (None: every search a different person).
    """
    scores = np.asarray(scores, np.float64)
    value, method, k, u, beta = _estimate(scores, rate)
    boot = bootstrap_values(scores, rate, resamples, seed, people)
    lo, hi, upper = np.percentile(boot, [2.5, 97.5, CONFIDENCE * 100]) if len(boot) else (value, value, value)
    return TailThreshold(float(value), (float(lo), float(hi)), float(upper), metrics.threshold_at_rate(scores, rate),
                         method, len(scores), k, u, beta)


def bootstrap_values(scores: np.ndarray, rate: float, resamples: int = RESAMPLES, seed: int = SEED,
                     people: np.ndarray | None = None) -> np.ndarray:
    """The estimate on `resamples` resamples of the people (with replacement), each drawn with all their searches.

    With one search per person (`people` None) this is the plain bootstrap of the searches."""
    if not len(scores) or resamples <= 0:
        return np.array([])
    person = np.arange(len(scores)) if people is None else np.unique(np.asarray(people), return_inverse=True)[1]
    n_people = int(person.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_people, size=(resamples, n_people))
    # each search repeated as often as its person was drawn
    return np.array([_estimate(np.repeat(scores, np.bincount(d, minlength=n_people)[person]), rate)[0]
                     for d in draws])


@dataclass(frozen=True)
class EquitableThreshold:
    value: float  # the highest group point estimate
    ci95: tuple[float, float]
    upper: float  # one-sided CONFIDENCE bound that every group meets the target at: what ships
    per_group: dict[str, TailThreshold]


def equitable_tail_threshold(nonmated_top: dict[str, np.ndarray], rate: float, resamples: int = RESAMPLES,
                             seed: int = SEED, people: dict[str, np.ndarray] | None = None) -> EquitableThreshold:
    """The equitable rule on tail estimates: the highest group threshold, so every group meets the target.

    Its interval and bound resample every group at once and take the maximum each time. `people[group]` names
    who made each search of that group (None: every search a different person).
    """
    who = people or {}
    per_group = {g: tail_threshold(s, rate, resamples, seed, who.get(g)) for g, s in nonmated_top.items()}
    value = max(t.value for t in per_group.values())
    boots = [bootstrap_values(np.asarray(s, np.float64), rate, resamples, seed + i, who.get(g))
             for i, (g, s) in enumerate(nonmated_top.items())]
    boots = [b for b in boots if len(b)]
    if not boots:
        return EquitableThreshold(value, (value, value), value, per_group)
    joint = np.max(np.vstack(boots), axis=0)
    lo, hi, upper = np.percentile(joint, [2.5, 97.5, CONFIDENCE * 100])
    return EquitableThreshold(value, (float(lo), float(hi)), float(upper), per_group)


def summary(t: TailThreshold) -> dict:
    """The JSON/TOML form of one estimate (no NaN: an empirical fallback has no tail)."""
    out = {"threshold": round(t.value, 4), "ci95": [round(t.ci95[0], 4), round(t.ci95[1], 4)],
           "upper": round(t.upper, 4),
           "empirical": round(t.empirical, 4), "method": t.method, "probes": t.probes}
    if t.method == "tail":
        out |= {"tail": t.tail, "tail_start": round(t.tail_start, 4), "scale": round(t.scale, 5)}
    return out
