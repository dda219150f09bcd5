"""Several photos per subject: the open-set protocol with up to three enrolled photos per person.

Watchlists often hold more than one custody photo. Protocol (contract): for every identity with at least
two images, the first min(MAX_TEMPLATES, n - 1) images are enrolled and the rest are mated probes, so
every enrolled person keeps at least one probe; identities with one image are the non-mated probes, as
in the one-photo protocol. On the same probes we compare three ways to use the enrolled photos:

- one photo: only the first (what the one-photo protocol would give on these probes);
- best template: a subject scores by its best photo (what the van's matcher does, matching/service.py);
- fused template: the photos' embeddings averaged into one template, then searched.

With a normaliser, every score is the adjusted one the van compares with its threshold (a subject's
offset is the mean of its templates' offsets, as in the matcher; a fused template has its own).
"""

from __future__ import annotations

import numpy as np

from appliance.evaluation import metrics
from appliance.evaluation.embed_dataset import DatasetEmbeddings
from appliance.evaluation.lfw import Dataset
from appliance.evaluation.protocol import images_by_identity
from appliance.matching.gallery import l2_normalise
from appliance.matching.normalise import BackgroundNormaliser

MAX_TEMPLATES = 3
VARIANTS = ("one photo", "best template", "fused template")


def multi_split(dataset: Dataset, max_templates: int = MAX_TEMPLATES) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """(enrolled image indices per subject, mated probe indices, non-mated probe indices)."""
    enrolled, mated, nonmated = [], [], []
    for idx in images_by_identity(dataset).values():
        if len(idx) >= 2:
            n = min(max_templates, len(idx) - 1)
            enrolled.append(idx[:n])
            mated.extend(idx[n:])
        else:
            nonmated.extend(idx)
    return enrolled, np.array(mated, np.int64), np.array(nonmated, np.int64)


def subject_scores(probe_e: np.ndarray, probe_off: np.ndarray, e: np.ndarray, off: np.ndarray,
                   enrolled: list[list[int]], variant: str, normaliser: BackgroundNormaliser | None) -> np.ndarray:
    """(probes, subjects) scores of probe embeddings (any faces: photos, street looks) against the enrolled
    photos (rows of e), used one way; -inf where a probe has no face."""
    pe = np.nan_to_num(probe_e, nan=0.0)
    missing = np.isnan(probe_e).any(axis=1)
    probe_off = probe_off[:, None]
    if variant == "fused template":
        fused = l2_normalise(np.stack([np.nanmean(e[rows], axis=0) if not np.isnan(e[rows]).all()
                                       else np.zeros(e.shape[1], np.float32) for rows in enrolled]))
        fused_off = normaliser.offsets(fused) if normaliser is not None else np.zeros(len(fused), np.float32)
        scores = pe @ fused.T - probe_off - fused_off[None, :]
        scores[:, ~fused.any(axis=1)] = -np.inf
    else:
        first_only = variant == "one photo"
        scores = np.full((len(pe), len(enrolled)), -np.inf, np.float32)
        for s, rows in enumerate(enrolled):
            rows = [r for r in (rows[:1] if first_only else rows) if not np.isnan(e[r]).any()]
            if rows:
                best = (pe @ np.nan_to_num(e[rows], nan=0.0).T).max(axis=1)
                scores[:, s] = best - probe_off[:, 0] - off[rows].mean()
    scores[missing] = -np.inf
    return scores


def evaluate_templates(dataset: Dataset, emb: DatasetEmbeddings, threshold: float,
                       normaliser: BackgroundNormaliser | None = None, target_fpir: float = 1e-3) -> dict:
    enrolled, mated, nonmated = multi_split(dataset)
    ids = np.array(dataset.identity)
    subject_ids = np.array([ids[rows[0]] for rows in enrolled])
    e, off = emb.embeddings, emb.offset()
    out: dict = {"protocol": f"enrol the first min({MAX_TEMPLATES}, n-1) photos of each identity with n >= 2; "
                 "the rest are mated probes; identities with one photo are non-mated",
                 "subjects": len(enrolled), "templates": int(sum(len(r) for r in enrolled)),
                 "subjects_with_2_or_more": int(sum(len(r) >= 2 for r in enrolled)),
                 "mated_probes": len(mated), "non_mated_probes": len(nonmated), "variants": {}}
    for variant in VARIANTS:
        sm = subject_scores(e[mated], off[mated], e, off, enrolled, variant, normaliser)
        sn = subject_scores(e[nonmated], off[nonmated], e, off, enrolled, variant, normaliser)
        correct = (subject_ids[sm.argmax(axis=1)] == ids[mated]) & np.isfinite(sm.max(axis=1))
        s = metrics.OpenSetScores(sm.max(axis=1), correct, sn.max(axis=1))
        out["variants"][variant] = {
            "rank1": round(float(correct.mean()), 5),
            "tpir_at_fpir": {"1e-3": round(metrics.tpir_at_threshold(s, metrics.threshold_for_fpir(s, target_fpir)), 5),
                             "1e-2": round(metrics.tpir_at_threshold(s, metrics.threshold_for_fpir(s, 1e-2)), 5)},
            "tpir_at_threshold": round(metrics.tpir_at_threshold(s, threshold), 5),
            "fpir_at_threshold": round(metrics.fpir_at_threshold(s, threshold), 6),
            "false_alarms_at_threshold": int((s.nonmated_top_score >= threshold).sum()),
        }
    return out
