"""Which score normalisation? The comparison behind the shipped one (docs/accuracy.md, "Score normalisation").

    python -m appliance.devtools.normalisation_study [--cache reports/study.npz]

Embeds LFW and the crowd photos with the van's pipeline (or reads them from --cache), then scores the open-set
protocol with each candidate: TPIR at FPIR 1e-3 read off the data, and TPIR at the equitable tail threshold
(the shipped estimator, women and men). Prints a markdown table. A study, not part of the van.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from appliance.config import load_config
from appliance.evaluation import metrics, tail
from appliance.evaluation.embed_dataset import embed_dataset
from appliance.evaluation.lfw import load_dataset
from appliance.evaluation.protocol import open_set_split
from appliance.matching.normalise import BackgroundNormaliser
from appliance.paths import shared_data_dir
from appliance.vision.background import embed_background
from appliance.vision.pipeline import FacePipeline

Score = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (sims, probe rows, gallery rows) -> scores


def load(cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(LFW embeddings, identities, is-female per image, all crowd faces, crowd faces that pass the gate)."""
    if cache and cache.is_file():
        d = np.load(cache)
        return d["lfw"], d["ids"], d["female"], d["crowd"], d["crowd_gated"]
    pipe = FacePipeline.from_config(load_config())
    data = shared_data_dir()
    ds = load_dataset(data / "lfw")
    lfw = embed_dataset(pipe, ds, progress=False).embeddings
    women = {line.strip() for line in (data / "lfw_gender" / "female_names.txt").read_text().splitlines()}
    female = np.array([Path(k).name in women for k in ds.images])
    crowd = embed_background(pipe, data / "crowd")
    gated = []
    for path in sorted((data / "crowd").glob("*.jpg")):
        image = cv2.imread(str(path))
        for face in pipe.detect(image):
            if face.quality is not None and face.quality.ok:
                gated.append(pipe.embed(image, face).embedding)
    out = (lfw, np.array(ds.identity), female, crowd, np.stack(gated))
    if cache:
        np.savez(cache, lfw=out[0], ids=out[1], female=out[2], crowd=out[3], crowd_gated=out[4])
    return out


def candidates(e: np.ndarray, crowd: np.ndarray, gated: np.ndarray) -> dict[str, Score]:
    def shift(background: np.ndarray, k: int) -> Score:  # what ships: matching/normalise.py
        off = BackgroundNormaliser(background, k).offsets(e)
        return lambda s, p, g: s - off[p][:, None] - off[g][None, :]

    def snorm(background: np.ndarray, k: int) -> Score:
        part = -np.sort(-(e @ background.T), axis=1)[:, :k]
        mu, sd = part.mean(axis=1), part.std(axis=1) + 1e-6
        return lambda s, p, g: 0.5 * ((s - mu[p][:, None]) / sd[p][:, None] + (s - mu[g][None, :]) / sd[g][None, :])

    def centroids(k_means: int, seed: int) -> Score:
        cv2.setRNGSeed(seed)
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
        _, _, cent = cv2.kmeans(crowd.astype(np.float32), k_means, None, crit, 5, cv2.KMEANS_PP_CENTERS)
        return shift(cent / np.linalg.norm(cent, axis=1, keepdims=True), 3)

    mean_face = crowd.mean(axis=0)
    mean_face /= np.linalg.norm(mean_face)
    mean_off = 0.25 * (e @ mean_face)

    def gallery_shift(s: np.ndarray, p: np.ndarray, g: np.ndarray, k: int = 10) -> np.ndarray:
        ranked = -np.sort(-s, axis=1)
        return s - ranked[:, 1 : k + 1].mean(axis=1)[:, None]

    def margin(s: np.ndarray, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        ranked = -np.sort(-s, axis=1)
        out = np.full_like(s, -np.inf)
        out[np.arange(len(s)), s.argmax(axis=1)] = ranked[:, 0] - ranked[:, 1]
        return out

    out: dict[str, Score] = {"raw cosine": lambda s, p, g: s}
    for k in (3, 5, 10):
        out[f"background shift, top {k} of {len(crowd)}"] = shift(crowd, k)
    out[f"background shift, top 10 of the {len(gated)} gated faces"] = shift(gated, 10)
    for k in (25, len(crowd)):
        out[f"S-norm (shift and divide), top {k}"] = snorm(crowd, k)
    for seed in (1, 2, 3):
        out[f"16 k-means centroids, top 3, seed {seed}"] = centroids(16, seed)
    out["the mean background face, half weight"] = lambda s, p, g: s - mean_off[p][:, None] - mean_off[g][None, :]
    out["the gallery as cohort, top 10 after the first"] = gallery_shift
    out["top-1 minus top-2 margin"] = margin
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="an .npz to keep the embeddings in between runs")
    args = ap.parse_args()
    e, ids, female, crowd, gated = load(args.cache)
    valid = ~np.isnan(e).any(axis=1)
    e = np.nan_to_num(e)
    gallery, mated, nonmated = open_set_split(SimpleNamespace(identity=[str(i) for i in ids]))  # type: ignore[arg-type]
    print("| variant | TPIR @ FPIR 1e-3 (read off the data) | TPIR at the equitable tail threshold |")
    print("|---|---|---|")
    for name, score in candidates(e, crowd, gated).items():
        tops = []
        for probes in (mated, nonmated):
            s = score(e[probes] @ e[gallery].T, probes, gallery)
            s[~valid[probes]] = -np.inf
            s[:, ~valid[gallery]] = -np.inf
            tops.append(s)
        correct = ids[gallery][tops[0].argmax(axis=1)] == ids[mated]
        os_scores = metrics.OpenSetScores(tops[0].max(axis=1), correct, tops[1].max(axis=1))
        emp = metrics.tpir_at_threshold(os_scores, metrics.threshold_for_fpir(os_scores, 1e-3))
        nm = os_scores.nonmated_top_score
        eq = tail.equitable_tail_threshold({"women": nm[female[nonmated]], "men": nm[~female[nonmated]]}, 1e-3)
        print(f"| {name} | {100 * emp:.1f} % | {100 * metrics.tpir_at_threshold(os_scores, eq.upper):.1f} % |")


if __name__ == "__main__":
    main()
