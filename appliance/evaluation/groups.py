"""Per-group accuracy (`appliance eval --groups FILE...`): error rates per demographic group, between
groups, with identity-bootstrap intervals, the differential, and the equitable operating point.

A label file lists image file names ("Name_0001.jpg", one a line); the group's name is the file's stem.
A group is a property of a person, so each identity takes the group that lists most of its images; images
a file does not list inherit it, and an identity split evenly between groups is left out (both counted).

Per group, at the global threshold:
- TAR: genuine pairs (two images of one person of the group) accepted;
- FMR: impostor pairs with both people in the group accepted; cross-group FMR: one person in each;
- open-set TPIR / FPIR: the group's probes searched against the whole open-set gallery.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.errors import ApplianceError
from appliance.evaluation import bootstrap, metrics, tail
from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import ceil4, open_set_split, similarities


def load_group_files(paths: list[Path]) -> dict[str, set[str]]:
    """Group name (file stem) -> image file names it lists. One clear error for a bad file."""
    groups: dict[str, set[str]] = {}
    for path in paths:
        if not path.is_file():
            raise ApplianceError(f"group label file {path} not found")
        name = path.stem
        if name in groups:
            raise ApplianceError(f"two group label files are named '{name}': group names come from file names")
        names = {Path(line.strip()).name for line in path.read_text().splitlines() if line.strip()}
        if not names:
            raise ApplianceError(f"group label file {path} lists no image names")
        groups[name] = names
    if len(groups) < 2:
        raise ApplianceError("--groups needs at least two label files (one per group) to compare groups")
    return groups


@dataclass(frozen=True)
class GroupAssignment:
    names: list[str]  # group names, sorted
    identities: list[str]  # unique identities, sorted
    image_identity: np.ndarray  # (n_images,) index into identities
    identity_group: np.ndarray  # (n_identities,) index into names, -1 = no group
    stats: dict


def assign_groups(keys: list[str], identity: list[str], files: dict[str, set[str]]) -> GroupAssignment:
    names = sorted(files)
    identities, image_identity = np.unique(np.array(identity), return_inverse=True)
    votes: list[Counter] = [Counter() for _ in identities]
    listed = 0
    for i, key in enumerate(keys):
        base = Path(key).name
        hit = [g for g, members in enumerate(names) if base in files[members]]
        listed += bool(hit)
        for g in hit:
            votes[image_identity[i]][g] += 1
    identity_group = np.full(len(identities), -1, np.int64)
    split = conflicting = 0
    for k, v in enumerate(votes):
        if not v:
            continue
        top = v.most_common()
        conflicting += len(top) > 1
        if len(top) > 1 and top[0][1] == top[1][1]:
            split += 1
            continue
        identity_group[k] = top[0][0]
    inherited = relabelled = outside = 0
    for i, key in enumerate(keys):
        g = identity_group[image_identity[i]]
        base = Path(key).name
        if g < 0:
            outside += 1
        elif base not in files[names[g]]:
            if any(base in files[n] for n in names):
                relabelled += 1
            else:
                inherited += 1
    stats = {
        "images_listed": listed,
        "images_inherited": inherited,  # not listed, in their person's group
        "images_relabelled": relabelled,  # listed in another group than most of their person's images
        "images_in_no_group": outside,
        "identities_with_conflicting_labels": conflicting,
        "identities_split_evenly": split,
    }
    return GroupAssignment(names, list(identities), image_identity, identity_group, stats)


@dataclass(frozen=True)
class PairCounts:
    """Per-identity genuine pair counts and the accepted impostor pairs between identities, at one threshold."""

    genuine_total: np.ndarray  # (n_identities,)
    genuine_accepted: np.ndarray
    images: np.ndarray  # images per identity
    impostor_a: np.ndarray  # identity pairs (a < b) with accepted comparisons, and how many
    impostor_b: np.ndarray
    impostor_count: np.ndarray


def pair_counts(sims: np.ndarray, image_identity: np.ndarray, n_identities: int, threshold: float) -> PairCounts:
    images = np.bincount(image_identity, minlength=n_identities).astype(np.float64)
    gen_total = images * (images - 1) / 2
    gen_acc = np.zeros(n_identities)
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    ia, ib = image_identity[i], image_identity[j]
    same = ia == ib
    np.add.at(gen_acc, ia[same], 1)
    a, b = np.minimum(ia[~same], ib[~same]), np.maximum(ia[~same], ib[~same])
    code, count = np.unique(a.astype(np.int64) * n_identities + b, return_counts=True)
    return PairCounts(gen_total, gen_acc, images, code // n_identities, code % n_identities, count)


def impostor_pairs(pc: PairCounts, group: np.ndarray, g: int, h: int) -> bootstrap.ImpostorPairs:
    """Impostor comparisons with one person in group g and the other in group h (g == h: within g)."""
    in_g, in_h = group == g, group == h
    ga, gb = group[pc.impostor_a], group[pc.impostor_b]
    if g == h:
        keep = (ga == g) & (gb == g)
        a, b, count = pc.impostor_a[keep], pc.impostor_b[keep], pc.impostor_count[keep]
    else:  # orient every pair as (person in g, person in h)
        fwd, rev = (ga == g) & (gb == h), (ga == h) & (gb == g)
        a = np.concatenate([pc.impostor_a[fwd], pc.impostor_b[rev]])
        b = np.concatenate([pc.impostor_b[fwd], pc.impostor_a[rev]])
        count = np.concatenate([pc.impostor_count[fwd], pc.impostor_count[rev]])
    return bootstrap.ImpostorPairs(pc.images * in_g, pc.images * in_h, a, b, count, within=g == h)


@dataclass(frozen=True)
class ProbeCounts:
    """Open-set outcomes per identity at one threshold (the gallery is the whole open-set gallery)."""

    mated: np.ndarray
    hits: np.ndarray
    nonmated: np.ndarray
    false_alarms: np.ndarray


def probe_counts(probe_identity: np.ndarray, is_mated: np.ndarray, top: np.ndarray, correct: np.ndarray,
                 n_identities: int, threshold: float) -> ProbeCounts:
    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(probe_identity[mask], minlength=n_identities).astype(np.float64)

    return ProbeCounts(count(is_mated), count(is_mated & correct & (top >= threshold)), count(~is_mated),
                       count(~is_mated & (top >= threshold)))


def _round(x: float, digits: int) -> float | None:
    """JSON has no NaN: an interval that cannot be computed (a group with no trials) is null."""
    return round(x, digits) if np.isfinite(x) else None


def _rate(name_hits: str, name_total: str, hits: np.ndarray, totals: np.ndarray, w: np.ndarray,
          error: bool = False) -> dict:
    """Point value (all identities once), the interval over resamples, and the counts behind them. An error
    rate's interval is never narrower than the exact binomial one: zero errors seen is not [0, 0]."""
    c, n = float(hits.sum()), float(totals.sum())
    out = {"value": round(c / n, 7) if n else None, name_hits: int(c), name_total: int(n)}
    samples = bootstrap.per_identity_rate(w, hits, totals)
    lo, hi = bootstrap.error_interval(samples, int(c), int(n)) if error else bootstrap.interval(samples)
    out["ci95"] = [_round(lo, 7), _round(hi, 7)]
    return out


def _pair_rate(pairs: bootstrap.ImpostorPairs, w: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    c, n = (float(x[0]) for x in pairs.counts(bootstrap.ones(w.shape[1])))
    num, den = pairs.counts(w)
    out = {"value": round(c / n, 9) if n else None, "false_matches": int(c), "pairs": int(n)}
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = bootstrap.error_interval(num / den, int(c), int(n))
    out["ci95"] = [_round(lo, 9), _round(hi, 9)]
    return out, num, den


def open_set_probes(dataset: Dataset, emb: DatasetEmbeddings, image_identity: np.ndarray):
    """(probe identity, is_mated, top score, rank-1 correct) for every open-set probe."""
    gallery, mated, nonmated = open_set_split(dataset)
    ids = np.array(dataset.identity)
    probes = np.concatenate([mated, nonmated]).astype(np.int64)
    is_mated = np.zeros(len(probes), bool)
    is_mated[: len(mated)] = True
    e = emb.embeddings
    valid = ~np.isnan(e[probes]).any(axis=1)
    sims = np.nan_to_num(e[probes], nan=0.0) @ np.nan_to_num(e[gallery], nan=0.0).T
    off = emb.offset()
    sims -= off[probes][:, None] + off[gallery][None, :]
    sims[:, np.isnan(e[gallery]).any(axis=1)] = -np.inf
    arg = sims.argmax(axis=1)
    top = np.where(valid, sims.max(axis=1), -np.inf)
    correct = valid & (ids[gallery][arg] == ids[probes])
    return image_identity[probes], is_mated, top, correct


def equitable_threshold(nonmated_top: dict[str, np.ndarray], fpir: float) -> tuple[float, dict[str, float]]:
    """The lowest threshold at which every group's FPIR is at or below `fpir` (FPIR falls as it rises)."""
    per_group = {g: metrics.threshold_at_rate(s, fpir) for g, s in nonmated_top.items()}
    return max(per_group.values()), per_group


def evaluate_groups(dataset: Dataset, emb: DatasetEmbeddings, files: dict[str, set[str]], threshold: float,
                    target_fpir: float, floor_fpir: float, resamples: int = bootstrap.RESAMPLES,
                    seed: int = bootstrap.SEED,
                    extra_searches: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[dict, dict]:
    """The "groups" JSON and the raw material for the report's plots.

    `extra_searches` (image index, top score): more non-mated searches for the threshold's tail only, e.g. the
    leave-one-out searches of protocol.py; each goes to its person's group. Rates are on the probes alone."""
    ga = assign_groups(dataset.images, dataset.identity, files)
    n_id = len(ga.identities)
    group = ga.identity_group
    w = bootstrap.identity_weights(group, resamples, seed)
    sims = similarities(emb.embeddings, emb.offsets)
    pc = pair_counts(sims, ga.image_identity, n_id, threshold)
    probe_id, is_mated, top, correct = open_set_probes(dataset, emb, ga.image_identity)
    prc = probe_counts(probe_id, is_mated, top, correct, n_id, threshold)

    per_group: dict[str, dict] = {}
    fmr_counts, fpir_counts, fmr_samples, fpir_samples = {}, {}, {}, {}
    for g, name in enumerate(ga.names):
        m = (group == g).astype(np.float64)
        fmr, num, den = _pair_rate(impostor_pairs(pc, group, g, g), w)
        per_group[name] = {
            "identities": int(m.sum()),
            "images": int((pc.images * m).sum()),
            "tar": _rate("accepted", "pairs", pc.genuine_accepted * m, pc.genuine_total * m, w),
            "fmr": fmr,
            "tpir": _rate("hits", "probes", prc.hits * m, prc.mated * m, w),
            "fpir": _rate("false_alarms", "probes", prc.false_alarms * m, prc.nonmated * m, w, error=True),
        }
        fmr_counts[name] = (fmr["false_matches"], fmr["pairs"])
        fmr_samples[name] = (num, den)
        fpir = per_group[name]["fpir"]
        fpir_counts[name] = (fpir["false_alarms"], fpir["probes"])
        fpir_samples[name] = (w @ (prc.false_alarms * m), w @ (prc.nonmated * m))
    cross = {}
    for g in range(len(ga.names)):
        for h in range(g + 1, len(ga.names)):
            cross[f"{ga.names[g]}-{ga.names[h]}"] = {"fmr": _pair_rate(impostor_pairs(pc, group, g, h), w)[0]}

    differential = {}
    for metric, counts, samples in (("fmr", fmr_counts, fmr_samples), ("fpir", fpir_counts, fpir_samples)):
        d = bootstrap.differential(counts)
        lo, hi = bootstrap.interval(bootstrap.differential_samples(samples))
        d["ci95_smoothed"] = [_round(lo, 3), _round(hi, 3)]
        differential[metric] = d

    nonmated_top = {name: top[~is_mated & (group[probe_id] == g)] for g, name in enumerate(ga.names)}
    # The operating point comes from each group's fitted tail, not its single highest score (evaluation/tail.py).
    # The threshold ships at the upper confidence bound (every group meets the target with 95 % confidence);
    # the floor, a limit on configuration rather than an operating point, at its point estimate.
    tail_scores = dict(nonmated_top)
    people = {name: probe_id[~is_mated & (group[probe_id] == g)] for g, name in enumerate(ga.names)}
    if extra_searches is not None and len(extra_searches[0]):
        extra_person = ga.image_identity[extra_searches[0]]
        extra_group = group[extra_person]
        tail_scores = {name: np.concatenate([nonmated_top[name], extra_searches[1][extra_group == g]])
                       for g, name in enumerate(ga.names)}
        people = {name: np.concatenate([people[name], extra_person[extra_group == g]])
                  for g, name in enumerate(ga.names)}
    # the bound resamples people, each with all their searches (tail.py)
    t_fit = tail.equitable_tail_threshold(tail_scores, target_fpir, people=people)
    f_fit = tail.equitable_tail_threshold(tail_scores, floor_fpir, people=people)
    t_fits, t_ci, f_ci = t_fit.per_group, t_fit.ci95, f_fit.ci95
    t_groups = {g: t.upper for g, t in t_fits.items()}
    f_groups = {g: t.value for g, t in f_fit.per_group.items()}
    t_empirical, _ = equitable_threshold(tail_scores, target_fpir)
    t_eq, f_eq = ceil4(t_fit.upper), ceil4(f_fit.value)
    at_eq = {name: (int((s >= t_eq).sum()), len(s)) for name, s in nonmated_top.items()}
    tpir_eq = float((correct & is_mated & (top >= t_eq)).sum() / max(is_mated.sum(), 1))
    calibration = {
        "target_fpir": target_fpir,
        "threshold": t_eq,
        "threshold_point": round(t_fit.value, 4),
        "threshold_ci95": [round(t_ci[0], 4), round(t_ci[1], 4)],
        "estimator": tail.ESTIMATOR,
        "empirical_threshold": ceil4(t_empirical),
        "floor_fpir": floor_fpir,
        "floor": f_eq,
        "floor_ci95": [round(f_ci[0], 4), round(f_ci[1], 4)],
        "threshold_per_group": {g: round(t, 4) for g, t in t_groups.items()},
        "threshold_per_group_empirical": {g: round(t.empirical, 4) for g, t in t_fits.items()},
        "tail_per_group": {g: tail.summary(t) for g, t in t_fits.items()},
        "floor_per_group": {g: round(t, 4) for g, t in f_groups.items()},
        "binding_group": max(t_fits, key=lambda g: t_fits[g].value),
        "fpir_per_group": {g: {"false_alarms": c, "probes": n, "value": round(c / n, 6) if n else None}
                           for g, (c, n) in at_eq.items()},
        "fpir_differential": bootstrap.differential(at_eq),
        "tpir": round(tpir_eq, 5),
    }
    result = {
        "threshold": round(threshold, 4),
        "bootstrap": {"unit": "identity", "resamples": resamples, "seed": seed, "level": bootstrap.LEVEL},
        "assignment": ga.stats,
        "per_group": per_group,
        "cross_group": cross,
        "differential": differential,
        "calibration": calibration,
    }
    curves, result["by_threshold"] = _curves(sims, ga, nonmated_top, threshold)
    return result, {"curves": curves, "threshold": threshold}


# Where the differential is read besides the operating point: NPL found a gender differential in
# false positives below one threshold and none above it, so the table spans looser thresholds too.
DIFFERENTIAL_THRESHOLDS = (0.35, 0.40, 0.45, 0.50, 0.55)


def _curves(sims: np.ndarray, ga: GroupAssignment, nonmated_top: dict[str, np.ndarray], threshold: float,
            grid: np.ndarray | None = None) -> tuple[dict, list[dict]]:
    """FMR and FPIR per group over a grid of thresholds (plots), and the differential at a few of them."""
    grid = np.linspace(0.2, 0.9, 141) if grid is None else grid
    image_group = ga.identity_group[ga.image_identity]
    out: dict = {"grid": grid, "fmr": {}, "fpir": {}}
    points = sorted({*DIFFERENTIAL_THRESHOLDS, round(threshold, 4)})
    fmr_counts: dict[float, dict] = {t: {} for t in points}
    fpir_counts: dict[float, dict] = {t: {} for t in points}
    for g, name in enumerate(ga.names):
        idx = np.flatnonzero(image_group == g)
        sub = sims[np.ix_(idx, idx)]
        iu, ju = np.triu_indices(len(idx), k=1)
        imp = np.sort(sub[iu, ju][ga.image_identity[idx][iu] != ga.image_identity[idx][ju]])
        out["fmr"][name] = 1 - np.searchsorted(imp, grid, side="left") / max(len(imp), 1)
        s = np.sort(nonmated_top[name])
        out["fpir"][name] = 1 - np.searchsorted(s, grid, side="left") / max(len(s), 1)
        for t in points:
            fmr_counts[t][name] = (int(len(imp) - np.searchsorted(imp, t, side="left")), len(imp))
            fpir_counts[t][name] = (int(len(s) - np.searchsorted(s, t, side="left")), len(s))
    table = [{"threshold": t,
              "fmr": {n: {"false_matches": c, "pairs": k} for n, (c, k) in fmr_counts[t].items()},
              "fpir": {n: {"false_alarms": c, "probes": k} for n, (c, k) in fpir_counts[t].items()},
              "fmr_differential": bootstrap.differential(fmr_counts[t]),
              "fpir_differential": bootstrap.differential(fpir_counts[t])}
             for t in points]
    return out, table
