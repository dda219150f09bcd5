"""Identity-level bootstrap for error rates. Pure numpy, no I/O; tested on constructed examples.

Images of one person are correlated (same face, often the same day), so resampling images would make
the intervals too narrow. We resample *identities* with replacement, within each stratum (group), and
weight every identity's images and comparisons by how many times it was drawn:

- a per-identity rate (TAR, TPIR, FPIR): sum_a w_a hits_a / sum_a w_a total_a;
- an impostor-pair rate (FMR) between identities a != b: each pair counts w_a * w_b times; pairs
  between two draws of the same identity are the same person and are not impostor pairs.

With every weight 1 these are the plain rates, so a point estimate and its interval share one code path.
The gallery of an open-set search is held fixed (re-searching per resample would cost a search each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000
SEED = 20260407  # fixed: the same data gives the same intervals, run after run
LEVEL = 0.95


def identity_weights(strata: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n_identities) draw counts: identities resampled with replacement within their stratum.

    strata[i] is the stratum (group index; -1 for identities in no group) of identity i.
    """
    rng = np.random.default_rng(seed)
    w = np.zeros((resamples, len(strata)), np.float64)
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        draws = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=resamples)
        w[:, members] = draws
    return w


def ones(n_identities: int) -> np.ndarray:
    """The weights of the data as observed: every identity once (a (1, n) matrix)."""
    return np.ones((1, n_identities), np.float64)


def per_identity_rate(w: np.ndarray, hits: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Rate per resample from per-identity counts (identities with no trials simply weigh nothing)."""
    den = w @ totals
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (w @ hits) / np.where(den > 0, den, 1), np.nan)


@dataclass(frozen=True)
class ImpostorPairs:
    """Impostor comparisons between two sets of identities (the same set for a within-group rate).

    n_images_a/b: images per identity (all identities, 0 outside the set); accepted: (ia, ib, count) of
    identity pairs with at least one accepted comparison, each unordered pair once.
    """

    n_images_a: np.ndarray
    n_images_b: np.ndarray
    accepted_a: np.ndarray
    accepted_b: np.ndarray
    accepted_count: np.ndarray
    within: bool  # True: a and b are the same set, pairs are unordered

    def counts(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(accepted, total) weighted comparison counts per resample."""
        num = (w[:, self.accepted_a] * w[:, self.accepted_b]) @ self.accepted_count.astype(np.float64)
        if self.within:
            s = w @ self.n_images_a
            den = (s * s - (w * w) @ (self.n_images_a.astype(np.float64) ** 2)) / 2
        else:
            den = (w @ self.n_images_a) * (w @ self.n_images_b)
        return num, den

    def rate(self, w: np.ndarray) -> np.ndarray:
        num, den = self.counts(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the bootstrap samples (NaN resamples, e.g. an empty stratum, are dropped)."""
    s = samples[np.isfinite(samples)]
    if not len(s):
        return float("nan"), float("nan")
    lo, hi = np.quantile(s, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def smoothed(count: np.ndarray | float, total: np.ndarray | float) -> np.ndarray | float:
    """A rate with half an error added, so a group with no error still has a finite ratio to the others.

    (count + 0.5) / (total + 0.5): the usual continuity correction; it matters only when a count is 0.
    """
    return (np.asarray(count, np.float64) + 0.5) / (np.asarray(total, np.float64) + 0.5)


def differential(counts: dict[str, tuple[float, float]]) -> dict:
    """Highest over lowest group rate (NIST FRVT's demographic differential), raw and smoothed.

    counts: group -> (errors, trials). The raw ratio is None ("undefined") when the lowest rate is 0.
    """
    rates = {g: (c / n if n else float("nan")) for g, (c, n) in counts.items()}
    valid = {g: r for g, r in rates.items() if np.isfinite(r)}
    if len(valid) < 2:
        return {"ratio": None, "highest": None, "lowest": None, "ratio_smoothed": None, "smoothed_rates": {}}
    hi_g = max(valid, key=valid.get)
    lo_g = min(valid, key=valid.get)
    raw = valid[hi_g] / valid[lo_g] if valid[lo_g] > 0 else None
    sm = {g: float(smoothed(*counts[g])) for g in valid}
    return {
        "ratio": None if raw is None else round(float(raw), 3),
        "highest": hi_g,
        "lowest": lo_g,
        "ratio_smoothed": round(max(sm.values()) / min(sm.values()), 3),
        "smoothed_rates": {g: round(r, 9) for g, r in sm.items()},
    }


def differential_samples(counts: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per-resample smoothed max/min ratio, for the interval of the differential."""
    rates = np.stack([smoothed(c, n) for c, n in counts.values()])
    return rates.max(axis=0) / rates.min(axis=0)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n may be millions of comparisons, k small)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    return min(1.0, sum(math.exp(base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                        for i in range(k + 1)))


def _bisect(f, lo: float, hi: float) -> float:
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) else (lo, mid)
    return (lo + hi) / 2


def exact_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Clopper-Pearson: the exact binomial interval of k errors in n trials. Never [0, 0]: with no error seen
    the upper end is 1 - (alpha/2)^(1/n), about 3.7/n, where the bootstrap of zero errors would say 0."""
    if n <= 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else _bisect(lambda p: 1 - _binom_cdf(k - 1, n, p) < a, 0.0, k / n)
    hi = 1.0 if k == n else _bisect(lambda p: _binom_cdf(k, n, p) > a, k / n, 1.0)
    return lo, hi


def error_interval(samples: np.ndarray, k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """An error rate's interval: the wider of the identity bootstrap (which knows that one person's images are
    alike) and the exact binomial one (which knows that no error seen is not no error)."""
    b_lo, b_hi = interval(samples, level)
    e_lo, e_hi = exact_interval(k, n, level)
    if not math.isfinite(b_lo):
        return e_lo, e_hi
    return min(b_lo, e_lo), max(b_hi, e_hi)
