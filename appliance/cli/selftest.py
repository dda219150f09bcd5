"""`appliance selftest [--json]`: check camera, models, interpreter, keys, watchlist, broker, clock, disk, heat."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from appliance.config import DEFAULT_CONFIG_PATH, load_config
from appliance.device.selftest import CHECK_NAMES, FAIL, PASS, SKIP, report, run_selftest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selftest", help="check that this device is fit to run: pass/fail/skip with a reason per check"
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                   help=f"config file (default {DEFAULT_CONFIG_PATH})")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--only", help=f"comma-separated checks to run, of: {', '.join(CHECK_NAMES)}")
    p.add_argument("--source", help="camera URI to check instead of the configured one (e.g. a video file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"capture.source": args.source} if args.source else None
    config = load_config(args.config, overrides)
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    results = run_selftest(config, only)
    doc = report(results, config, args.config)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        label = {PASS: "PASS", FAIL: "FAIL", SKIP: "skip"}
        for r in results:
            print(f"{label[r.status]}  {r.name:13} {r.reason}")
        counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, SKIP)}
        failed = f" ({', '.join(doc['failed'])})" if doc["failed"] else ""
        print(f"selftest {config.device.id}: {counts[FAIL]} failed{failed}, {counts[PASS]} passed, "
              f"{counts[SKIP]} skipped")
    return 1 if doc["failed"] else 0
