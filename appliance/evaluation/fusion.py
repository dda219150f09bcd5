"""Multi-look fusion (`appliance eval --fusion`): deciding on one look against deciding on a track's looks.

A van sees a passer-by several times. We stand in for a track's looks by degrading one photo of each
open-set probe in N_LOOKS different random ways (smaller, blurred, JPEG-compressed, slightly rotated,
off-centre crop; seeded, so the same every run), embed each look with the van's pipeline, search each
against the open-set gallery, and compare decision rules at EQUAL TPIR by the FPIR per track they give.

Rules (each turns a track into a "hit score" for the true subject and an "alarm score" for anyone; the
track alerts at threshold t when the score is >= t):
- one look: the first look only (what a single frame gives);
- best look: the look with the highest top-1 score decides (its subject, its score);
- k-of-n: a subject alerts when at least k looks have it as their top-1 at or above t (the shipped
  alert rule, `alerts.min_looks` = k; k = 1 is today's default);
- mean: the mean of the looks' embeddings (all of them, or the top 3 by quality), searched once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from appliance.evaluation.embed_dataset import DatasetEmbeddings, central_face
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import open_set_split
from appliance.evaluation.templates import MAX_TEMPLATES, multi_split, subject_scores
from appliance.matching.normalise import BackgroundNormaliser
from appliance.vision.pipeline import FacePipeline

N_LOOKS = 5
SEED = 7
TOP_K_QUALITY = 3


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One look: a random mix of the things a street camera does to a face."""
    h, w = image.shape[:2]
    angle = rng.uniform(-12, 12)
    dx, dy = rng.uniform(-0.08, 0.08, 2) * (w, h)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    crop = rng.uniform(0.85, 1.0)  # off-centre crop, up to 15% of each side lost
    cw, ch = int(w * crop), int(h * crop)
    x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    out = out[y0 : y0 + ch, x0 : x0 + cw]
    scale = rng.uniform(0.45, 0.9)  # a smaller face: fewer pixels between the eyes
    out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    quality = int(rng.uniform(15, 70))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


@dataclass
class Tracks:
    """Embeddings of N_LOOKS looks per probe: (probes, looks, D), NaN where no face was found."""

    embeddings: np.ndarray
    quality: np.ndarray  # (probes, looks) the quality gate's look quality (-inf: no face)
    gate_ok: np.ndarray  # (probes, looks) bool: the live quality gate would have embedded it
    truth: np.ndarray  # (probes,) identity of each probe
    mated: np.ndarray  # (probes,) bool


def embed_looks(pipe: FacePipeline, dataset: Dataset, probes: np.ndarray, mated: np.ndarray, looks: int = N_LOOKS,
                seed: int = SEED, progress: bool | None = None) -> Tracks:
    progress = sys.stderr.isatty() if progress is None else progress
    dim = pipe.embedder.size
    emb = np.full((len(probes), looks, dim), np.nan, np.float32)
    quality = np.full((len(probes), looks), -np.inf)
    gate = np.zeros((len(probes), looks), bool)
    for p, idx in enumerate(tqdm(probes, desc="looks", unit="probe", disable=not progress)):
        image = cv2.imread(str(dataset.path(dataset.images[idx])))
        if image is None:
            continue
        rng = np.random.default_rng([seed, int(idx)])
        for k in range(looks):
            look = degrade(image, rng)
            face = central_face(pipe.detect(look, portrait=True), look.shape[1], look.shape[0])
            if face is None:
                continue
            pipe.embed(look, face)
            emb[p, k] = face.embedding
            if face.quality is not None:
                quality[p, k] = face.quality.quality
                gate[p, k] = face.quality.ok
    ids = np.array(dataset.identity)
    return Tracks(emb, quality, gate, ids[probes], mated)


def _top1(sims: np.ndarray, gallery_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject, score) of the best gallery row for each row of sims; NaN rows score -inf."""
    sims = np.nan_to_num(sims, nan=-np.inf, neginf=-np.inf)  # keep -inf: a look without a face never matches
    arg = sims.argmax(axis=-1)
    score = np.take_along_axis(sims, arg[..., None], axis=-1)[..., 0]
    return gallery_ids[arg], score


Scores = dict[str, tuple[np.ndarray, np.ndarray]]


def look_top1(tracks: Tracks, gallery: np.ndarray, gallery_ids: np.ndarray,
              normaliser: BackgroundNormaliser | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(subject, score) of each look's best gallery row, (probes, looks); adjusted scores with a normaliser."""
    e = tracks.embeddings
    n, looks, dim = e.shape
    sims = np.einsum("pld,gd->plg", np.nan_to_num(e, nan=0.0), gallery)
    if normaliser is not None:
        sims -= normaliser.offsets(e.reshape(-1, dim)).reshape(n, looks)[..., None] + normaliser.offsets(gallery)
    sims[np.isnan(e).any(axis=2)] = -np.inf
    return _top1(sims, gallery_ids)


def nonmated_by_quality(tracks: Tracks, scores: np.ndarray, bins: int = 4) -> dict:
    """Does a poor look score higher against people it is not? Non-mated looks' best scores per quartile of
    look quality (the gate's quality number), gated looks only: the evidence for a quality-aware threshold."""
    keep = ~tracks.mated[:, None] & tracks.gate_ok & np.isfinite(scores)
    q, s = tracks.quality[keep], scores[keep]
    if len(q) < bins * 25:
        return {}
    edges = np.quantile(q, np.linspace(0, 1, bins + 1))
    rows = []
    for b in range(bins):
        sel = (q >= edges[b]) & ((q < edges[b + 1]) if b < bins - 1 else (q <= edges[b + 1]))
        rows.append({"quality": [round(float(edges[b]), 1), round(float(edges[b + 1]), 1)], "looks": int(sel.sum()),
                     "mean": round(float(s[sel].mean()), 4), "p99": round(float(np.quantile(s[sel], 0.99)), 4),
                     "max": round(float(s[sel].max()), 4)})
    rank = np.argsort(np.argsort(q)), np.argsort(np.argsort(s))
    return {"bins": rows, "spearman": round(float(np.corrcoef(*rank)[0, 1]), 4)}


def rule_scores(tracks: Tracks, gallery: np.ndarray, gallery_ids: np.ndarray,
                normaliser: BackgroundNormaliser | None = None,
                top1: tuple[np.ndarray, np.ndarray] | None = None) -> Scores:
    """Per rule: (hit score of each mated track for its true subject, alarm score of each non-mated track).

    With a normaliser every score is the adjusted one the van compares with its threshold."""
    e = tracks.embeddings
    n, looks, _ = e.shape

    def offsets(x: np.ndarray) -> np.ndarray:
        return normaliser.offsets(x) if normaliser is not None else np.zeros(len(x), np.float32)

    gallery_off = offsets(gallery)
    # (n, looks); the caller may pass what look_top1 already gave
    subj, score = top1 if top1 is not None else look_top1(tracks, gallery, gallery_ids, normaliser)
    truth = tracks.truth[:, None]
    m, nm = tracks.mated, ~tracks.mated
    out: Scores = {}

    def pair(hit: np.ndarray, alarm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return hit[m], alarm[nm]

    out["one look"] = pair(np.where(subj[:, 0] == tracks.truth, score[:, 0], -np.inf), score[:, 0])
    best = score.argmax(axis=1)
    best_subj, best_score = subj[np.arange(n), best], score[np.arange(n), best]
    out["best look"] = pair(np.where(best_subj == tracks.truth, best_score, -np.inf), best_score)
    for k in range(1, looks + 1):
        # the k-th highest score among looks whose top-1 is the subject: the subject alerts at t iff it is >= t
        true_scores = np.sort(np.where(subj == truth, score, -np.inf), axis=1)[:, ::-1]
        hit = true_scores[:, k - 1]
        alarm = np.full(n, -np.inf)
        for p in range(n):
            for s in set(subj[p][np.isfinite(score[p])]):
                ss = np.sort(score[p][subj[p] == s])[::-1]
                if len(ss) >= k:
                    alarm[p] = max(alarm[p], ss[k - 1])
        out[f"{k}-of-{looks}"] = pair(hit, alarm)
    for name, keep in (("mean of all looks", np.isfinite(tracks.quality)),
                       (f"mean of top {TOP_K_QUALITY} by quality", _top_k(tracks.quality, TOP_K_QUALITY))):
        w = keep[..., None].astype(np.float32)
        fused = (np.nan_to_num(e, nan=0.0) * w).sum(axis=1)
        norm = np.linalg.norm(fused, axis=1, keepdims=True)
        fused = np.divide(fused, norm, out=np.zeros_like(fused), where=norm > 0)
        fsubj, fscore = _top1(fused @ gallery.T - offsets(fused)[:, None] - gallery_off[None, :], gallery_ids)
        fscore = np.where(norm[:, 0] > 0, fscore, -np.inf)
        out[name] = pair(np.where(fsubj == tracks.truth, fscore, -np.inf), fscore)
    return out


def several_photos(tracks: Tracks, probes: np.ndarray, dataset: Dataset, emb: DatasetEmbeddings, threshold: float,
                   normaliser: BackgroundNormaliser | None = None) -> dict:
    """The street looks against a watchlist with up to MAX_TEMPLATES photos per person (the templates protocol,
    evaluation/templates.py), each subject scored by its best photo as the van's matcher does: the share of
    mated tracks recognised by one look and by 1-of-n at the threshold, and the false alerts per non-mated track.

    The tracks are the one-photo protocol's; the templates protocol's mated probes are a subset of its mated
    probes (their photos beyond the first three), its non-mated probes the same."""
    enrolled, t_mated, t_nonmated = multi_split(dataset)
    row_of = {int(image): row for row, image in enumerate(probes)}
    mated_rows = [row_of[int(i)] for i in t_mated if int(i) in row_of]
    nonmated_rows = [row_of[int(i)] for i in t_nonmated if int(i) in row_of]
    ids = np.array(dataset.identity)
    subject_ids = np.array([ids[rows[0]] for rows in enrolled])
    rows = np.array(mated_rows + nonmated_rows, np.int64)
    e = tracks.embeddings[rows]
    n, looks, dim = e.shape
    flat = e.reshape(-1, dim)
    look_off = normaliser.offsets(flat) if normaliser is not None else np.zeros(len(flat), np.float32)
    scores = subject_scores(flat, look_off, emb.embeddings, emb.offset(), enrolled, "best template", normaliser)
    top = scores.max(axis=1).reshape(n, looks)
    subj = subject_ids[scores.argmax(axis=1)].reshape(n, looks)
    mated = np.arange(n) < len(mated_rows)
    right = (subj == tracks.truth[rows][:, None]) & (top >= threshold)
    alarm = top[~mated] >= threshold
    return {
        "protocol": "the street looks of the templates protocol's probes against its watchlist (up to "
                    f"{MAX_TEMPLATES} photos per person, best template)",
        "mated_tracks": int(mated.sum()), "non_mated_tracks": int((~mated).sum()),
        "one look": {"tpir": round(float(right[mated, 0].mean()), 5), "false_alarms": int(alarm[:, 0].sum())},
        f"1-of-{looks}": {"tpir": round(float(right[mated].any(axis=1).mean()), 5),
                          "false_alarms": int(alarm.any(axis=1).sum())},
    }


def _top_k(quality: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-quality, axis=1)
    keep = np.zeros_like(quality, bool)
    np.put_along_axis(keep, order[:, :k], True, axis=1)
    return keep & np.isfinite(quality)


def threshold_for_tpir(hit: np.ndarray, tpir: float) -> float:
    """The highest threshold at which at least `tpir` of the mated tracks alert for their true subject."""
    need = int(np.ceil(tpir * len(hit) - 1e-9))
    if need <= 0:
        return float("inf")
    s = np.sort(hit)[::-1]
    return float(s[need - 1]) if need <= len(s) else float("-inf")


def compare_at_tpir(scores: Scores, tpirs: list[float]) -> dict:
    """FPIR per track of every rule, at the threshold giving each rule the same TPIR."""
    table: dict[str, dict] = {}
    for name, (hit, alarm) in scores.items():
        rows = {}
        for tp in tpirs:
            t = threshold_for_tpir(hit, tp)
            if t == -np.inf:  # this rule never reaches that TPIR, whatever the threshold
                rows[f"{tp:.3f}"] = {"threshold": None, "false_alarms": None, "fpir": None}
                continue
            fa = int((alarm >= t).sum())
            rows[f"{tp:.3f}"] = {"threshold": round(t, 4), "false_alarms": fa,
                                 "fpir": round(fa / max(len(alarm), 1), 6)}
        table[name] = rows
    return table


def evaluate_fusion(pipe: FacePipeline, dataset: Dataset, emb: DatasetEmbeddings, threshold: float,
                    progress: bool | None = None, max_probes: int | None = None,
                    looks: int = N_LOOKS, normaliser: BackgroundNormaliser | None = None) -> tuple[dict, dict]:
    gallery_idx, mated_idx, nonmated_idx = open_set_split(dataset)
    if max_probes:  # a deterministic subset, for quick runs and tests
        rng = np.random.default_rng(SEED)
        mated_idx = np.sort(rng.choice(mated_idx, min(max_probes, len(mated_idx)), replace=False))
        nonmated_idx = np.sort(rng.choice(nonmated_idx, min(max_probes, len(nonmated_idx)), replace=False))
    probes = np.concatenate([mated_idx, nonmated_idx])
    mated = np.zeros(len(probes), bool)
    mated[: len(mated_idx)] = True
    tracks = embed_looks(pipe, dataset, probes, mated, looks=looks, progress=progress)
    gallery = np.nan_to_num(emb.embeddings[gallery_idx], nan=0.0)
    gallery_ids = np.array(dataset.identity)[gallery_idx]
    top1 = look_top1(tracks, gallery, gallery_ids, normaliser)
    scores = rule_scores(tracks, gallery, gallery_ids, normaliser, top1)
    # the TPIRs to compare at: what today's rule (1-of-n) reaches at the shipped threshold, then fixed points
    base_hit = scores[f"1-of-{looks}"][0]
    at_threshold = float((base_hit >= threshold).mean())
    tpirs = sorted({round(at_threshold, 3), 0.75, 0.8, 0.85, 0.9})
    table = compare_at_tpir(scores, tpirs)
    at_shipped = {name: {"tpir": round(float((h >= threshold).mean()), 5),
                         "fpir": round(float((a >= threshold).mean()), 6), "false_alarms": int((a >= threshold).sum())}
                  for name, (h, a) in scores.items()}
    # fewest false alarms summed over the compared TPIRs; a TPIR a rule cannot reach counts as every track
    def total(rule: str) -> int:
        return sum(len(scores[rule][1]) if v["false_alarms"] is None else v["false_alarms"]
                   for v in table[rule].values())

    winner = min(table, key=total)
    result = {
        "looks_per_track": looks,
        "mated_tracks": int(mated.sum()),
        "non_mated_tracks": int((~mated).sum()),
        "looks_without_face": int(np.isnan(tracks.embeddings).any(axis=2).sum()),
        "looks_refused_by_live_gate": int((np.isfinite(tracks.quality) & ~tracks.gate_ok).sum()),
        "threshold": round(threshold, 4),
        "reference_tpir": round(at_threshold, 5),
        "at_equal_tpir": table,
        "at_shipped_threshold": at_shipped,
        "fewest_false_alarms": winner,
        "non_mated_looks_by_quality": nonmated_by_quality(tracks, top1[1]),
        "several_photos": several_photos(tracks, probes, dataset, emb, threshold, normaliser),
    }
    return result, {"scores": scores}
