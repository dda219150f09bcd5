"""The `--out` report of `appliance eval`: report.md, a DET plot, a score histogram, and the failures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from appliance.evaluation import metrics
from appliance.evaluation.templates import MAX_TEMPLATES


def _plots(raw: dict, threshold: float, out: Path, score_name: str) -> list[str]:
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
    ax.set_xlabel(score_name)
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
    plots = _plots(raw, result["threshold"], out, _score_name(result))
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
        f"{result['calibration']['target_fpir']} (point estimate {result['calibration']['threshold_point']:.4f}, "
        f"95% interval [{result['calibration']['threshold_ci95'][0]:.4f}, "
        f"{result['calibration']['threshold_ci95'][1]:.4f}]; the single-highest-score estimate would be "
        f"{result['calibration']['empirical_threshold']:.4f}); floor {result['calibration']['floor']:.4f} "
        f"(FPIR ≤ {result['calibration']['floor_fpir']}). Estimator: {result['calibration']['estimator']}.",
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
    lines += false_alerts_section(result)
    if "groups" in result:
        lines += groups_section(result, raw, out)
    if "nasa" in result:
        lines += nasa_section(result)
    if "fusion" in result:
        lines += fusion_section(result, raw["fusion"], out)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def _sci(x: float | None) -> str:
    return "—" if x is None else f"{x:.2e}"


def _ci(r: dict, digits: int = 2, sci: bool = False) -> str:
    def fmt(x: float | None) -> str:
        return _sci(x) if sci else _pct(x, digits)

    lo, hi = r["ci95"]  # an error rate's interval already includes the exact binomial one (never [0, 0])
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _score_name(result: dict) -> str:
    """What the thresholds are on: the raw cosine, or the normalised score the van compares (issue 15)."""
    return "cosine" if result.get("scores", "").startswith("cosine") or "scores" not in result else "adjusted score"


def _group_plots(result: dict, raw: dict, out: Path, score_name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, t = raw["curves"], raw["threshold"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "fmr", "FMR (impostor pairs within the group)"),
                           (axes[1], "fpir", "FPIR (the group's non-mated probes)")):
        for name, y in curves[key].items():
            ax.semilogy(curves["grid"], np.where(y > 0, y, np.nan), label=name)  # a zero rate ends the curve
        ax.axvline(t, color="k", linestyle="--", label=f"threshold {t:.4f}")
        ax.set_xlabel(f"threshold ({score_name})")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "groups_rates.png", dpi=110)
    plt.close(fig)

    per = result["per_group"]
    metrics_ = ("tar", "tpir", "fmr", "fpir")
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, m in zip(axes, metrics_, strict=True):
        names = list(per)
        vals = [per[n][m]["value"] or 0.0 for n in names]
        cis = [[v if c is None else c for c in per[n][m]["ci95"]] for v, n in zip(vals, names, strict=True)]
        lo = [v - c[0] for v, c in zip(vals, cis, strict=True)]
        hi = [c[1] - v for v, c in zip(vals, cis, strict=True)]
        ax.bar(names, vals, yerr=[lo, hi], capsize=6, color=["tab:orange", "tab:blue", "tab:green"][: len(names)])
        ax.set_title(f"{m.upper()} at {t:.4f} (95% CI)")
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(out / "groups_ci.png", dpi=110)
    plt.close(fig)
    return ["groups_rates.png", "groups_ci.png"]


def groups_section(result: dict, raw: dict, out: Path) -> list[str]:
    g = result["groups"]
    b = g["bootstrap"]
    lines = [
        "",
        "## Per group",
        "",
        f"At the threshold {g['threshold']:.4f}. 95% intervals: {b['resamples']} bootstrap resamples of *identities* "
        f"(not images: photos of one person are correlated), within each group, seed {b['seed']}.",
        f"Group assignment: {g['assignment']}.",
        "",
        "| group | people | images | TAR | FMR | TPIR | FPIR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in g["per_group"].items():
        lines.append(
            f"| {name} | {r['identities']:,} | {r['images']:,} "
            f"| {_pct(r['tar']['value'])} {_ci(r['tar'])} ({r['tar']['accepted']:,}/{r['tar']['pairs']:,}) "
            f"| {_sci(r['fmr']['value'])} {_ci(r['fmr'], sci=True)} "
            f"({r['fmr']['false_matches']}/{r['fmr']['pairs']:,}) "
            f"| {_pct(r['tpir']['value'])} {_ci(r['tpir'])} ({r['tpir']['hits']:,}/{r['tpir']['probes']:,}) "
            f"| {_pct(r['fpir']['value'], 3)} {_ci(r['fpir'], 3)} "
            f"({r['fpir']['false_alarms']}/{r['fpir']['probes']:,}) |")
    for name, r in g["cross_group"].items():
        f = r["fmr"]
        lines.append(f"| {name} (cross-group impostors) | | | | {_sci(f['value'])} {_ci(f, sci=True)} "
                     f"({f['false_matches']}/{f['pairs']:,}) | | |")
    lines += ["", "Differential (highest / lowest group rate; smoothed adds half an error to each count):", ""]
    for m, d in g["differential"].items():
        if d["ratio_smoothed"] is None:
            lines.append(f"- {m.upper()}: fewer than two groups have trials: no differential")
            continue
        raw_ratio = "undefined (a group has no error)" if d["ratio"] is None else f"{d['ratio']:.2f}"
        lo, hi = ("—" if x is None else f"{x:.2f}" for x in d["ci95_smoothed"])
        lines.append(f"- {m.upper()}: {raw_ratio}; smoothed {d['ratio_smoothed']:.2f} [{lo}, {hi}] "
                     f"(highest raw rate: {d['highest']})")
    names = list(g["per_group"])
    lines += [
        "",
        "By threshold (counts; the differential is highest / lowest group rate, '—' when a group has none):",
        "",
        "| threshold | " + " | ".join(f"FMR {n}" for n in names) + " | FMR ratio | "
        + " | ".join(f"FPIR {n}" for n in names) + " | FPIR ratio |",
        "|---|" + "---|" * (2 * len(names) + 2),
    ]
    for row in g["by_threshold"]:
        fm = [f"{row['fmr'][n]['false_matches'] / max(row['fmr'][n]['pairs'], 1):.2e} "
              f"({row['fmr'][n]['false_matches']})" for n in names]
        fp = [f"{_pct(row['fpir'][n]['false_alarms'] / max(row['fpir'][n]['probes'], 1), 2)} "
              f"({row['fpir'][n]['false_alarms']})" for n in names]

        def ratio(d: dict) -> str:
            return "—" if d["ratio"] is None else f"{d['ratio']:.2f} ({d['highest']})"

        lines.append(f"| {row['threshold']:.4f} | " + " | ".join(fm) + f" | {ratio(row['fmr_differential'])} | "
                     + " | ".join(fp) + f" | {ratio(row['fpir_differential'])} |")
    c = g["calibration"]
    lines += [
        "",
        f"Equitable threshold (every group's FPIR ≤ {c['target_fpir']}, one-sided 95% bound of the tail "
        f"estimate): **{c['threshold']:.4f}** (point {c['threshold_point']:.4f}, 95% interval "
        f"[{c['threshold_ci95'][0]:.4f}, {c['threshold_ci95'][1]:.4f}]; per group alone: "
        f"{c['threshold_per_group']}; from the single highest score: {c['threshold_per_group_empirical']}; "
        f"binding: {c['binding_group']}); floor {c['floor']:.4f} (FPIR ≤ {c['floor_fpir']}); pooled TPIR there "
        f"{_pct(c['tpir'])}.",
        "",
        *[f"![{p}]({p})" for p in _group_plots(g, raw["groups"], out, _score_name(result))],
    ]
    return lines


def false_alerts_section(result: dict) -> list[str]:
    fa = result["false_alerts"]
    f = fa["fmr_per_comparison"]
    lines = [
        "",
        "## Expected false alerts per 10,000 faces seen",
        "",
        f"Per-comparison FMR at {fa['threshold']:.4f}: {f['value']:.2e} ({f['false_matches']} of "
        f"{f['comparisons']:,} impostor pairs; 95% CI [{f['ci95'][0]:.2e}, {f['ci95'][1]:.2e}]). Model: "
        "1 − (1 − FMR)^N per face; measured: random watchlists of N LFW people, every face of the others searched.",
        "",
        "| watchlist | model | model 95% CI | measured |",
        "|---|---|---|---|",
    ]
    for n, r in fa["per_watchlist_size"].items():
        m = r["measured_per_10000"]
        meas = "— (more people than LFW)" if m is None else (
            f"{m:.2f} ({r['measured']['false_alerts']} in {r['measured']['faces']:,} faces)")
        lines.append(f"| {int(n):,} | {r['model_per_10000']:.2f} | {r['model_ci95_per_10000'][0]:.2f}–"
                     f"{r['model_ci95_per_10000'][1]:.2f} | {meas} |")
    return lines


def nasa_section(result: dict) -> list[str]:
    n = result["nasa"]
    s = n["summary"]
    lines = [
        "",
        "## Reference photo against live view (NASA)",
        "",
        f"Gallery: {n['gallery']['nasa_enrolled']} portraits + {n['gallery']['lfw_distractors']:,} LFW people; "
        f"threshold {n['threshold']:.4f}. Live mode: {s['gate_passed']}/{s['probes']} pass the gate, rank-1 "
        f"{s['rank1']}, true alerts {s['true_alerts']}, false alerts {s['false_alerts']}.",
        "",
        "| probe | gate (live) | rank | score | top-1 (score) | alert | portrait mode: gate, rank, score |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in n["probes"]:
        lv, pm = p["live"], p["portrait_mode"]
        lines.append(f"| {p['probe']} | {lv['gate']} | {lv.get('rank', '—')} | {lv.get('score', '—')} "
                     f"| {lv.get('top1', '—')} ({lv.get('top1_score', '—')}) | {lv['alert']} "
                     f"| {pm['gate']}, {pm.get('rank', '—')}, {pm.get('score', '—')} |")
    return lines


def fusion_section(result: dict, raw: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = result["fusion"]
    tpirs = list(next(iter(f["at_equal_tpir"].values())))
    lines = [
        "",
        "## Multi-look fusion",
        "",
        f"{f['mated_tracks']:,} mated and {f['non_mated_tracks']:,} non-mated tracks of {f['looks_per_track']} "
        f"looks each ({f['looks_without_face']} looks without a face; {f['looks_refused_by_live_gate']} would be "
        "refused by the live gate, embedded anyway here). FPIR per track at equal TPIR (false alarms / tracks):",
        "",
        "| rule | " + " | ".join(f"TPIR {t}" for t in tpirs) + " | at the shipped threshold: TPIR, FPIR |",
        "|---|" + "---|" * len(tpirs) + "---|",
    ]
    for rule, rows in f["at_equal_tpir"].items():
        cells = [("unreachable" if r["fpir"] is None else f"{_pct(r['fpir'], 2)} ({r['false_alarms']})")
                 for r in rows.values()]
        s = f["at_shipped_threshold"][rule]
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {_pct(s['tpir'])}, {_pct(s['fpir'], 3)} |")
    lines += ["", f"Fewest false alarms over these TPIRs: **{f['fewest_false_alarms']}**."]
    if several := f.get("several_photos"):
        n = f["looks_per_track"]
        lines += ["", f"With up to {MAX_TEMPLATES} photos per person on the watchlist ({several['mated_tracks']:,} "
                  f"mated and {several['non_mated_tracks']:,} non-mated tracks, best template), at the shipped "
                  "threshold: one "
                  f"look {_pct(several['one look']['tpir'])} ({several['one look']['false_alarms']} false alarms), "
                  f"1-of-{n} {_pct(several[f'1-of-{n}']['tpir'])} ({several[f'1-of-{n}']['false_alarms']} false "
                  "alarms)."]

    fig, ax = plt.subplots(figsize=(7, 5))
    floor = 0.5 / max(f["non_mated_tracks"], 1)  # FPIR 0 is drawn at the left edge
    for rule, (hit, alarm) in raw["scores"].items():
        ts = np.unique(np.concatenate([hit[np.isfinite(hit)], alarm[np.isfinite(alarm)]]))[::-1][::7]
        tp = [(hit >= t).mean() for t in ts]
        fp = [max((alarm >= t).mean(), floor) for t in ts]
        ax.semilogx(fp, tp, label=rule)
    ax.set_xlabel("FPIR per track (non-mated tracks that alert; 0 at the left edge)")
    ax.set_ylabel("TPIR per track")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fusion.png", dpi=110)
    plt.close(fig)
    return [*lines, "", "![fusion](fusion.png)"]


def summary_lines(result: dict) -> list[str]:
    """A few lines for the terminal (without --json): per group, NASA, fusion, expected false alerts."""
    lines = []
    for name, g in result.get("groups", {}).get("per_group", {}).items():
        t, f = g["tpir"], g["fpir"]
        lines.append(f"  {name}: TPIR {_pct(t['value'])} [{_pct(t['ci95'][0])}, {_pct(t['ci95'][1])}], "
                     f"FPIR {_pct(f['value'], 3)} ({f['false_alarms']}/{f['probes']}), FMR {_sci(g['fmr']['value'])}")
    if "groups" in result:
        d = result["groups"]["differential"]
        c = result["calibration"]
        lines.append(f"  differential FMR {d['fmr']['ratio'] or 'undefined'} (smoothed {d['fmr']['ratio_smoothed']}), "
                     f"FPIR {d['fpir']['ratio'] or 'undefined'} (smoothed {d['fpir']['ratio_smoothed']}); "
                     f"equitable threshold {c['threshold']:.4f}, floor {c['floor']:.4f}")
    if "nasa" in result:
        s = result["nasa"]["summary"]
        lines.append(f"  NASA: {s['probes']} probes, {s['gate_passed']} pass the gate, rank-1 {s['rank1']}, "
                     f"true alerts {s['true_alerts']}, false alerts {s['false_alerts']}")
    if "fusion" in result:
        lines.append(f"  fusion: fewest false alarms at equal TPIR: {result['fusion']['fewest_false_alarms']}")
    if "templates" in result:
        t = result["templates"]
        head = f"  up to 3 photos per subject ({t['subjects_with_2_or_more']} of {t['subjects']} with 2+): "
        lines.append(head + "; ".join(
            f"{name} TPIR@FPIR1e-3 {_pct(v['tpir_at_fpir']['1e-3'])}, at threshold {_pct(v['tpir_at_threshold'])} "
            f"(FPIR {v['false_alarms_at_threshold']}/{t['non_mated_probes']})" for name, v in t["variants"].items()))
    if "scores" in result:
        lines.append(f"  scores: {result['scores']}")
    rows = result.get("false_alerts", {}).get("per_watchlist_size", {})
    if rows:
        lines.append("  expected false alerts per 10,000 faces: " + ", ".join(
            f"watchlist {int(n):,}: {r['model_per_10000']:.1f}" for n, r in rows.items()))
    return lines
