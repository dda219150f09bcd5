"""`appliance report --deployment ID --out FILE.html|.md`: the deployment's transparency report (counts only)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from appliance.config import load_config
from appliance.daemon.assembly import open_events
from appliance.errors import ApplianceError, KeyMaterialError
from appliance.keys.keypairs import load_verify_key
from appliance.keys.paths import identity_public_path
from appliance.reports.build import build_report
from appliance.reports.render import render_html, render_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a deployment's transparency report (HTML, Markdown or JSON)")
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config")
    p.add_argument("--deployment", required=True, metavar="ID", help="deployment id (see `appliance deployment list`)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="FILE.html, FILE.md or FILE.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    suffix = args.out.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".json"):
        raise ApplianceError(f"--out {args.out}: the name must end in .html, .md or .json")
    config = load_config(args.config)
    try:
        key = load_verify_key(identity_public_path(config))
    except KeyMaterialError:
        key = None  # the report says the log was not checked
    events = open_events(config, create=False)
    try:
        report = build_report(events, args.deployment, public_key=key)
    finally:
        events.close()
    if suffix == ".json":
        text = json.dumps(asdict(report), indent=2)
    else:
        text = render_markdown(report) if suffix == ".md" else render_html(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote the report of deployment {args.deployment} to {args.out}")
    return 0
