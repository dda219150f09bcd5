"""`appliance retention purge|hold|release|holds`: run the retention purge now, and put alerts on legal hold."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from appliance.config import load_config
from appliance.daemon.assembly import open_audit, open_events
from appliance.retention.purge import clear_legal_hold, legal_holds, purge, set_legal_hold


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retention", help="purge alert images past their retention period; legal holds")
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pu = actions.add_parser("purge", help="purge now what is past retention.crop_days / records_days (audited)")
    h = actions.add_parser("hold", help="keep an alert's image past the retention period (legal hold)")
    h.add_argument("alert_id", metavar="ALERT", help="the alert whose crop must be kept")
    h.add_argument("--officer", required=True, metavar="ID", help="the officer setting the hold (audited)")
    h.add_argument("--reason", required=True, help="e.g. the case or court reference")
    r = actions.add_parser("release", help="lift a legal hold (the image goes at the next purge if it is old)")
    r.add_argument("alert_id", metavar="ALERT", help="the alert whose hold ends (its crop is purged on schedule)")
    r.add_argument("--officer", required=True, metavar="ID", help="the officer releasing the hold (audited)")
    r.add_argument("--reason", required=True, help="why the hold ends (audited)")
    ls = actions.add_parser("holds", help="list the alerts on legal hold")
    for a in (pu, h, r, ls):
        a.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="appliance TOML config")
    pu.set_defaults(func=run_purge)
    h.set_defaults(func=run_hold)
    r.set_defaults(func=run_release)
    ls.set_defaults(func=run_holds)


def _open(args):
    config = load_config(args.config)
    events = open_events(config, create=False)
    try:
        return config, events, open_audit(config, events)
    except BaseException:
        events.close()
        raise


def run_purge(args: argparse.Namespace) -> int:
    config, events, audit = _open(args)
    try:
        r = purge(events, audit, crop_days=config.retention.crop_days, records_days=config.retention.records_days)
    finally:
        events.close()
    print(json.dumps(asdict(r)))
    return 0


def run_hold(args: argparse.Namespace) -> int:
    _, events, audit = _open(args)
    try:
        set_legal_hold(events, audit, args.alert_id, officer=args.officer, reason=args.reason)
    finally:
        events.close()
    print(f"alert {args.alert_id} is on legal hold: its image is kept until the hold is lifted")
    return 0


def run_release(args: argparse.Namespace) -> int:
    _, events, audit = _open(args)
    try:
        clear_legal_hold(events, audit, args.alert_id, officer=args.officer, reason=args.reason)
    finally:
        events.close()
    print(f"legal hold on alert {args.alert_id} lifted")
    return 0


def run_holds(args: argparse.Namespace) -> int:
    _, events, _ = _open(args)
    try:
        holds = legal_holds(events)
    finally:
        events.close()
    if not holds:
        print("no alert is on legal hold")
    for h in holds:
        print(f"{h['alert_id']}  held {h['held_at']} by {h['held_by']}: {h['reason']}")
    return 0
