"""The `--out` report of `appliance eval`: report.md, a DET plot, a score histogram, and the failures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from appliance.evaluation import metrics


def _plots(raw: dict, threshold: float, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = raw["comparisons"]
    gen = comps.genuine[np.isfinite(comps.genuine)]
    imp = comps.impostor[np.isfinite(comps.impostor)]
    fmr, fnmr = metrics.det_curve(gen, imp)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.loglog(np.clip(fmr, 1e-7, 1), np.clip(fnmr, 1e-4, 1))
    ax.set_xlabel("false match rate (impostor pairs accepted)")
    ax.set_ylabel("false non-match rate (genuine pairs refused)")
    ax.set_title("DET: all LFW pairs")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "det.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(-0.4, 1.0, 141)
    sample = imp if len(imp) < 2_000_000 else np.random.default_rng(0).choice(imp, 2_000_000, replace=False)
    ax.hist(sample, bins=bins, density=True, alpha=0.6, label=f"impostor ({len(imp):,})")
    ax.hist(gen, bins=bins, density=True, alpha=0.6, label=f"genuine ({len(gen):,})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("cosine similarity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=110)
    plt.close(fig)
    return ["det.png", "scores.png"]


def _worst_pairs_montage(data_root: Path, worst: list[tuple[float, str, str]], out: Path) -> str | None:
    rows = []
    for score, a, b in worst:
        ia, ib = cv2.imread(str(data_root / a)), cv2.imread(str(data_root / b))
        if ia is None or ib is None:
            continue
        ia, ib = cv2.resize(ia, (112, 112)), cv2.resize(ib, (112, 112))
        row = np.hstack([ia, ib])
        cv2.putText(row, f"{score:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
        rows.append(row)
    if not rows:
        return None
    cols = 4
    while len(rows) % cols:
        rows.append(np.zeros_like(rows[0]))
    grid = np.vstack([np.hstack(rows[i : i + cols]) for i in range(0, len(rows), cols)])
    cv2.imwrite(str(out / "worst_genuine_pairs.png"), grid)
    return "worst_genuine_pairs.png"


def write_report(result: dict, raw: dict, data_root: Path, out: Path, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    plots = _plots(raw, result["threshold"], out)
    montage = _worst_pairs_montage(data_root, raw["comparisons"].worst_genuine, out)
    o = result["open_set"]
    lines = [
        f"# Accuracy report: {result['model']}",
        "",
        f"Command: `{command}`",
        "",
        f"- Images: {result['images']:,}; no face found: {result['no_face']}",
    ]
    if "pairs" in result:
        p = result["pairs"]
        lines.append(f"- Pairs accuracy ({p['folds']}-fold, {p['pairs']:,} pairs): "
                     f"**{p['accuracy'] * 100:.2f}%** ± {p['std'] * 100:.2f}")
    ap = result["all_pairs"]
    lines += [
        f"- All pairs: {ap['genuine']:,} genuine, {ap['impostor']:,} impostor",
        "",
        "| FAR | TAR | threshold |",
        "|---|---|---|",
        *[f"| {k} | {v * 100:.2f}% | {ap['threshold_at_far'][k]:.4f} |" for k, v in result["tar_at_far"].items()],
        "",
        "## Open-set identification (the van's task)",
        "",
        f"Gallery {o['gallery_size']:,} subjects; {o['mated_probes']:,} mated and {o['non_mated_probes']:,} "
        "non-mated probes.",
        "",
        "| FPIR | TPIR |",
        "|---|---|",
        *[f"| {k} | {v * 100:.2f}% |" for k, v in o["tpir_at_fpir"].items()],
        "",
        f"At the configured threshold **{result['threshold']:.4f}**: TPIR {o['tpir_at_threshold'] * 100:.2f}%, "
        f"FPIR {o['fpir_at_threshold'] * 100:.3f}% (rank-1 {o['rank1'] * 100:.2f}%).",
        "",
        f"Calibrated: threshold {result['calibration']['threshold']:.4f} for FPIR ≤ "
        f"{result['calibration']['target_fpir']}; floor {result['calibration']['floor']:.4f} (FPIR ≤ "
        f"{result['calibration']['floor_fpir']}).",
        "",
        "FPIR is the share of people *not* on the watchlist whose best score reaches the threshold: each such",
        "person would raise a false alert for an officer to review. TPIR is the share of watchlisted people",
        "who are recognised as the right person.",
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        "## Failures",
        "",
        f"Quality gate verdicts on the evaluated faces (not applied in this evaluation): {result['quality_gate']}",
        "",
        f"No face found ({len(raw['no_face'])}):",
        "",
        *[f"- {k}" for k in raw["no_face"]],
        "",
        "Worst genuine pairs (lowest score for the same person):",
        "",
        *[f"- {s:.3f}  {a}  {b}" for s, a, b in raw["comparisons"].worst_genuine],
    ]
    if montage:
        lines += ["", f"![worst genuine pairs]({montage})"]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
