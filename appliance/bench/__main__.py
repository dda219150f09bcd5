"""python -m appliance.bench --out DIR [--quick] [--only stages|watchlist|search]"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.bench import search, stages, watchlist_bench
from appliance.bench.report import to_markdown
from appliance.bench.system import Section, machine_info, peak_rss_mb
from appliance.errors import ApplianceError

# Stages first: their peak memory is then the vision pipeline's own, not the 1M-gallery search's.
SECTIONS = ("stages", "watchlist", "search")


def run(
    out: Path, quick: bool = False, only: Sequence[str] = SECTIONS, sizes: Sequence[int] | None = None, log=print
) -> dict[str, Any]:
    """Run the benchmark sections, write out/bench.json and out/bench.md, return the result."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "command": " ".join(["python -m appliance.bench --out", str(out), *(["--quick"] if quick else []),
                             *(f"--only {o}" for o in only if tuple(only) != SECTIONS),
                             *([f"--sizes {','.join(map(str, sizes))}"] if sizes else [])]),
        "quick": quick,
        "machine": machine_info(),
    }
    memory: dict[str, Any] = {"sections": {}}
    for name in SECTIONS:
        if name not in only:
            continue
        with Section() as section:
            if name == "search":
                plan = search.QUICK if quick else search.SearchPlan()
                if sizes:
                    plan = dataclasses.replace(plan, sizes=tuple(sizes))
                result["search"] = search.bench_search(plan, log=log)
            elif name == "watchlist":
                result["watchlist"] = watchlist_bench.run(out, quick=quick, log=log)
            else:
                result["stages"] = stages.bench_stages(stages.QUICK if quick else stages.StagePlan(), log=log)
        memory["sections"][name] = section.to_json()
    memory["peak_rss_mb"] = peak_rss_mb()
    result["memory"] = memory
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "bench.md").write_text(to_markdown(result))
    log(f"wrote {out / 'bench.json'} and {out / 'bench.md'} in {result['elapsed_s']} s")
    return result


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v.replace("_", "")) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("gallery sizes must be at least 1")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.bench",
        description="Speed and memory benchmarks: 1:N search per matcher back-end (1k, 100k, 1M), vision stages "
        "and end-to-end fps on a replayed clip (720p, 1080p), peak memory. Writes bench.json and bench.md.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for bench.json and bench.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds to run (checks the harness)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.add_argument("--sizes", type=_sizes, help="gallery sizes for the search section, e.g. 1000,100000")
    args = parser.parse_args(argv)
    try:
        run(args.out, quick=args.quick, only=args.only or SECTIONS, sizes=args.sizes)
    except ApplianceError as e:
        print(f"appliance.bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
