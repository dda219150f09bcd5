"""bench.json -> bench.md: the same figures as tables a person can read."""

from __future__ import annotations

from typing import Any


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def machine_md(m: dict[str, Any]) -> list[str]:
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    return [
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores, {m['usable_cores']} usable), {m['memory_total_mb']} MB RAM",
        f"- {m['system']} {m['machine']}, Python {m['python']}",
        f"- {pk}",
        f"- run at {m['date_utc']}; load average at start {m.get('load_average_at_start')} "
        "(above the core count means other work shared the CPU and the figures are pessimistic)",
        "",
    ]


def search_md(s: dict[str, Any]) -> list[str]:
    hn = s["hnsw"]
    lines = [
        "## 1:N search",
        "",
        f"{s['dim']}-d float32 unit vectors, top-{s['k']}. {s['data']}. Threads: {s['threads']}.",
        f"HNSW: connectivity {hn['connectivity']}, expansion_add {hn['expansion_add']}, usearch stores "
        f"{hn['usearch_dtype']}, faiss {hn['faiss_dtype']}, {hn['scores']}; ef = expansion_search at query time.",
        "Single = one query per call (median / p95); batched = per query within one call of many.",
        "Speed-up is numpy's time divided by the back-end's (>1 is faster). Recall@1 = same top-1 subject as "
        "numpy exact, for mated / non-mated probes.",
        "",
        "| gallery | back-end | build s | index MB | single median ms | single p95 ms | batched ms/query "
        "| speed-up single | speed-up batched | recall@1 mated | recall@1 non-mated |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in s["sizes"]:
        for b in size["backends"]:
            if "skipped" in b:
                lines.append(f"| {size['gallery']:,} | {b['backend']} | skipped: {b['skipped']} |||||||||")
                continue
            for r in b["runs"]:
                name = b["backend"] + (f" (ef {r['expansion_search']})" if r.get("expansion_search") else "")
                sp = r.get("speedup_vs_numpy", {})
                rc = r["recall_at_1"]
                lines.append(
                    f"| {size['gallery']:,} | {name} | {_f(b['build_s'], 2)} | {_f(b['index_mb'], 1)} "
                    f"| {_f(r['single']['median_ms'])} | {_f(r['single']['p95_ms'])} "
                    f"| {_f(r['batched']['per_query_ms'], 4)} | {_f(sp.get('single'), 2)} | {_f(sp.get('batched'), 2)} "
                    f"| {_f(rc['mated'])} | {_f(rc['non_mated'])} |"
                )
    lines.append("")
    return lines


def stages_md(st: dict[str, Any]) -> list[str]:
    lines = ["## Vision stages", ""]
    if "skipped" in st:
        return [*lines, f"Skipped: {st['skipped']}", ""]
    c = st["clip"]
    lines += [
        f"Clip: {c['source']}, {c['seconds']} s at {c['fps']} fps per resolution (first {c['warmup_frames']} "
        f"frames not timed). Models: {st['models']['detector']}, {st['models']['landmarks']}, "
        f"{st['models']['embedder']}; {st['runtime']['threads']} threads, XNNPACK {st['runtime']['xnnpack']}; "
        f"detector tiles {st['detector']['tiles']}. Match: {st['matcher']['backend']} over a "
        f"{st['matcher']['gallery']:,}-subject gallery. Pipeline load {st['pipeline_load_s']} s.",
        "",
        "### End to end",
        "",
        "| resolution | faces/frame (mean / max) | embedded/frame | every face: fps | frame ms median / p95 "
        "| tracked: fps | frame ms median / p95 | embedded/frame (tracked) | decode ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in st["resolutions"].items():
        e, t = r["every_face"], r["tracked"]
        f = e["faces_per_frame"]
        lines.append(
            f"| {label} | {f['detected_mean']} / {f['detected_max']} | {f['embedded_mean']} | {e['fps']} "
            f"| {e['frame_ms']['median']} / {e['frame_ms']['p95']} | {t['fps']} "
            f"| {t['frame_ms']['median']} / {t['frame_ms']['p95']} | {t['embedded_per_frame_mean']} "
            f"| {e['decode_ms_median']} |"
        )
    lines += ["", "### Tile schedule on the tracked path (`detector.tile_schedule`)", "",
              "Round robin runs the whole frame every frame and the finer grids in turn. Tracks started is the "
              "number of people the tracker followed: fewer would mean faces lost, more would mean tracks split.",
              "", "| resolution | schedule | fps | frame ms median / p95 | faces detected/frame | tracks started |",
              "|---|---|---:|---:|---:|---:|"]
    for label, r in st["resolutions"].items():
        for t in (r["tracked"], r.get("tracked_round_robin")):
            if t:
                lines.append(f"| {label} | {t.get('schedule', 'every_frame')} | {t['fps']} | {t['frame_ms']['median']} "
                             f"/ {t['frame_ms']['p95']} | {t.get('detected_per_frame_mean')} | {t['tracks_started']} |")
    lines += ["", "### Per stage (every-face run)", "",
              "| resolution | stage | calls | median ms | p95 ms | ms per frame |", "|---|---|---:|---:|---:|---:|"]
    for label, r in st["resolutions"].items():
        for name, s in r["every_face"]["stages"].items():
            lines.append(f"| {label} | {name} | {s['calls']} | {_f(s['median_ms'])} | {_f(s['p95_ms'])} "
                         f"| {_f(s['ms_per_frame'])} |")
    lines.append("")
    return lines


def memory_md(mem: dict[str, Any]) -> list[str]:
    lines = ["## Memory", "", f"Peak resident memory of the whole run (ru_maxrss): **{mem['peak_rss_mb']} MB**.", ""]
    for name, v in mem.get("sections", {}).items():
        lines.append(
            f"- {name}: peak rose by {v['peak_rss_delta_mb']} MB (to {v['peak_rss_mb']} MB); {v['wall_s']} s wall, "
            f"{v['cores_used']} cores used on average, load average at end {v['load_average_at_end']}"
        )
    return [*lines, ""]


def watchlist_md(w: dict[str, Any]) -> list[str]:
    sec = w.get("seconds", {})
    mem = w.get("device_memory_mb", {})
    lines = [
        "## Watchlist bundle end to end",
        "",
        f"{w['subjects']:,} subjects with reference photos: bundle {w['bundle_mb']} MB "
        f"({w['bytes_per_subject']:,} bytes per subject), {w['chunks']} chunks of {w['chunk_bytes'] // 1024} KiB, "
        f"ack: {w['ack_status']}.",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k.replace('_', ' ')} | {v} |" for k, v in sec.items()],
        "",
        f"Device process memory: {mem.get('rss_at_start')} MB at start, peak {mem.get('peak')} MB.",
        "",
    ]
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Benchmark",
        "",
        f"Produced by `{result['command']}` in {result['elapsed_s']} s"
        + (" (quick mode: tiny sizes, figures are not meaningful)" if result["quick"] else "") + ".",
        "These are measurements, not pass/fail tests.",
        "",
        *machine_md(result["machine"]),
    ]
    if "search" in result:
        lines += search_md(result["search"])
    if "stages" in result:
        lines += stages_md(result["stages"])
    if "watchlist" in result:
        lines += watchlist_md(result["watchlist"])
    lines += memory_md(result["memory"])
    return "\n".join(lines)
