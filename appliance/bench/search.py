"""1:N search benchmark: every matcher back-end on random galleries of 1k, 100k and 1M templates.

The gallery is uniform random unit vectors (128-d float32). Probes are half "mated" (a gallery row plus
noise, cosine ~0.6 to it, like a genuine face pair) and half "non-mated" (fresh random vectors, like a
passer-by). Uniform random data is the hardest case for a graph index (HNSW): real face embeddings have a
lower intrinsic dimension, so HNSW recall here is a lower bound.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.bench.system import current_rss_mb, peak_rss_mb
from appliance.matching import Gallery, Matcher, l2_normalise, make_matcher
from appliance.matching.errors import BackendUnavailable
from appliance.matching.usearch_backend import (
    HNSW_CONNECTIVITY,
    HNSW_DTYPE,
    HNSW_EXPANSION_ADD,
    HNSW_EXPANSION_SEARCH,
)

BACKENDS = ["numpy", "usearch", "faiss", "usearch-hnsw", "faiss-hnsw"]
MATE_NOISE = 0.11  # per-dimension noise on a mated probe: cosine ~0.6 to its mate at 128-d


@dataclass(frozen=True)
class SearchPlan:
    sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    dim: int = 128
    k: int = 5
    probes: int = 200  # single-query timings per back-end (half mated, half not)
    probes_at_1m: int = 40  # fewer where one exact query costs tens of ms
    batch: int = 100  # queries per batched search call
    recall_probes: int = 1000  # probes for recall@1 against numpy exact (half mated)
    batch_repeats: int = 5
    hnsw_ef: tuple[int, ...] = (64, HNSW_EXPANSION_SEARCH)  # expansion_search values measured
    # faiss HNSW at 1M builds for minutes on 2 cores; usearch HNSW is measured there instead.
    max_size: dict[str, int] = field(default_factory=lambda: {"faiss-hnsw": 100_000})
    seed: int = 0


QUICK = SearchPlan(
    sizes=(500, 2_000), probes=20, probes_at_1m=10, batch=10, recall_probes=40, batch_repeats=2, hnsw_ef=(32,)
)


def random_unit(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for a in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - a), dim), dtype=np.float32)
        out[a : a + len(block)] = l2_normalise(block)
    return out


def make_probes(rng: np.random.Generator, g: Gallery, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n probes, the first half mated; returns (probes, is_mated)."""
    n_mated = n // 2
    rows = rng.integers(0, g.n_templates, n_mated)
    mated = l2_normalise(g.embeddings[rows] + MATE_NOISE * rng.standard_normal((n_mated, g.dim), dtype=np.float32))
    other = random_unit(rng, n - n_mated, g.dim)
    return np.vstack([mated, other]), np.arange(n) < n_mated


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def time_single(matcher: Matcher, probes: np.ndarray, k: int) -> dict[str, float]:
    for q in probes[:3]:  # warm caches and lazy init
        matcher.search(q, k)
    ms = []
    for q in probes:
        t0 = time.perf_counter()
        matcher.search(q, k)
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(statistics.median(ms), 4), "p95_ms": round(pct(ms, 95), 4), "n": len(ms)}


def time_batch(matcher: Matcher, probes: np.ndarray, k: int, size: int, repeats: int) -> dict[str, float]:
    batch = probes[:size]
    matcher.search(batch, k)  # warm-up: thread pools start, caches fill
    per_query = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matcher.search(batch, k)
        per_query.append((time.perf_counter() - t0) * 1e3 / len(batch))
    return {"batch": len(batch), "per_query_ms": round(statistics.median(per_query), 4), "repeats": repeats}


def recall_at_1(matcher: Matcher, probes: np.ndarray, mated: np.ndarray, ref_top1: np.ndarray) -> dict[str, float]:
    top1 = matcher.search(probes, 1).subjects[:, 0]
    hit = top1 == ref_top1
    return {"mated": round(float(hit[mated].mean()), 4), "non_mated": round(float(hit[~mated].mean()), 4)}


def measure_backend(
    backend: str, g: Gallery, probes: np.ndarray, mated: np.ndarray, ref_top1: np.ndarray, plan: SearchPlan,
    n_single: int,
) -> dict[str, Any]:
    gc.collect()
    rss0, peak0 = current_rss_mb(), peak_rss_mb()
    t0 = time.perf_counter()
    matcher = make_matcher(backend, g)
    build_s = time.perf_counter() - t0
    rss1 = current_rss_mb()
    entry: dict[str, Any] = {
        "backend": backend,
        "exact": matcher.exact,
        "build_s": round(build_s, 3),
        "index_mb": round(matcher.memory_bytes() / 2**20, 1),
        "rss_delta_mb": round(rss1 - rss0, 1) if rss0 is not None and rss1 is not None else None,
    }
    variants = plan.hnsw_ef if not matcher.exact else (None,)
    results = []
    for ef in variants:
        if ef is not None:
            matcher.expansion_search = ef  # type: ignore[attr-defined]
        r: dict[str, Any] = {"expansion_search": ef} if ef is not None else {}
        r["single"] = time_single(matcher, probes[:n_single], plan.k)
        r["batched"] = time_batch(matcher, probes, plan.k, plan.batch, plan.batch_repeats)
        r["recall_at_1"] = recall_at_1(matcher, probes, mated, ref_top1)
        results.append(r)
    entry["runs"] = results
    entry["peak_rss_delta_mb"] = round(peak_rss_mb() - peak0, 1)
    del matcher
    gc.collect()
    return entry


def bench_search(plan: SearchPlan, log: Callable[[str], None] = print) -> dict[str, Any]:
    rng = np.random.default_rng(plan.seed)
    out: dict[str, Any] = {
        "dim": plan.dim,
        "k": plan.k,
        "data": "uniform random unit vectors; probes half mated (cosine ~0.6 to a row), half non-mated",
        "hnsw": {"connectivity": HNSW_CONNECTIVITY, "expansion_add": HNSW_EXPANSION_ADD,
                 "expansion_search_default": HNSW_EXPANSION_SEARCH, "usearch_dtype": HNSW_DTYPE,
                 "faiss_dtype": "f32", "scores": "candidates re-scored exactly in float32"},
        "threads": "library defaults: all cores (numpy BLAS, usearch threads=0, faiss OpenMP)",
        "sizes": [],
    }
    for n in plan.sizes:
        t0 = time.perf_counter()
        g = Gallery([f"s{i}" for i in range(n)], random_unit(rng, n, plan.dim))
        n_probes = max(plan.batch, plan.probes, plan.recall_probes)
        probes, mated = make_probes(rng, g, n_probes)
        n_single = plan.probes if n < 1_000_000 else plan.probes_at_1m
        # Put some of both kinds among the single-query probes.
        order = np.argsort(rng.random(n_probes))
        probes, mated = probes[order], mated[order]
        ref_top1 = make_matcher("numpy", g).search(probes, 1).subjects[:, 0]
        size: dict[str, Any] = {"gallery": n, "gallery_mb": round(g.embeddings.nbytes / 2**20, 1),
                                "setup_s": round(time.perf_counter() - t0, 2), "backends": []}
        log(f"search: gallery {n:,} ({size['gallery_mb']} MB)")
        for backend in BACKENDS:
            if n > plan.max_size.get(backend, n):
                size["backends"].append({"backend": backend, "skipped": f"not run above {plan.max_size[backend]:,}"})
                continue
            try:
                entry = measure_backend(backend, g, probes, mated, ref_top1, plan, n_single)
            except BackendUnavailable as e:
                size["backends"].append({"backend": backend, "skipped": str(e)})
                continue
            size["backends"].append(entry)
            first = entry["runs"][-1]
            log(f"  {backend:13} build {entry['build_s']:7.2f} s  single {first['single']['median_ms']:8.3f} ms  "
                f"batched {first['batched']['per_query_ms']:8.4f} ms/q  recall@1 {first['recall_at_1']}")
        add_ratios(size)
        out["sizes"].append(size)
        del g, probes
        gc.collect()
    return out


def add_ratios(size: dict[str, Any]) -> None:
    """Speed-up of every run against numpy exact at the same size (>1 means faster than numpy)."""
    ref = next((b for b in size["backends"] if b["backend"] == "numpy" and "runs" in b), None)
    if ref is None:
        return
    single, batched = ref["runs"][0]["single"]["median_ms"], ref["runs"][0]["batched"]["per_query_ms"]
    for b in size["backends"]:
        for r in b.get("runs", []):
            r["speedup_vs_numpy"] = {
                "single": round(single / r["single"]["median_ms"], 2) if r["single"]["median_ms"] else None,
                "batched": round(batched / r["batched"]["per_query_ms"], 2) if r["batched"]["per_query_ms"] else None,
            }
