"""`appliance deployment start|end|status|list`: authorise, end and inspect deployments from the device.

A running daemon picks up a start or an end made here within a few seconds (it re-reads the deployments
table); the console and signed control-room commands act at once.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

from appliance.config import load_config
from appliance.daemon.assembly import open_audit, open_events, open_store
from appliance.deployments.context import context_from_config
from appliance.deployments.manager import DeploymentManager, list_deployments
from appliance.deployments.record import DeploymentError, DeploymentRequest
from appliance.deployments.types import DeploymentRecord
from appliance.watchlist.timeutil import parse_time, utcnow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deployment", help="start, end or show deployments (matching runs only inside one)")
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("start", help="start a deployment now, with the loaded watchlist")
    s.add_argument("--officer", required=True, metavar="ID", help="the authorising officer")
    s.add_argument("--purpose", required=True, help="why: the purpose of this deployment")
    s.add_argument("--location", required=True, metavar="TEXT", help="where, in words")
    s.add_argument("--lat", type=float, help="latitude (optional, with --lon)")
    s.add_argument("--lon", type=float, help="longitude (optional, with --lat)")
    s.add_argument("--dpia", required=True, metavar="REF", help="the data protection impact assessment reference")
    end = s.add_mutually_exclusive_group(required=True)
    end.add_argument("--until", metavar="TIME", help="planned end, ISO 8601 UTC (e.g. 2026-11-26T18:00:00Z)")
    end.add_argument("--hours", type=float, help="planned end, in hours from now")
    e = actions.add_parser("end", help="end the active deployment")
    e.add_argument("--officer", required=True, metavar="ID", help="who ends it")
    e.add_argument("--id", metavar="DEPLOYMENT", help="end only if this is the active deployment")
    st = actions.add_parser("status", help="the active deployment, if any")
    ls = actions.add_parser("list", help="recent deployments")
    for a in (s, e, st, ls):
        a.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="appliance TOML config")
        a.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_start)
    e.set_defaults(func=run_end)
    st.set_defaults(func=run_status)
    ls.set_defaults(func=run_list)


class _Parts:
    def __init__(self, args):
        self.config = load_config(args.config)
        self.events = open_events(self.config)
        self.watchlist = None
        try:
            self.audit = open_audit(self.config, self.events)
            self.audit.attach(self.events)  # the start or end is audited in its own transaction
            self.watchlist = open_store(self.config)
            wipe = None
            if self.config.deployment.wipe_watchlist_on_end:
                from appliance.commands.actions import watchlist_eraser

                wipe = watchlist_eraser(self.watchlist)
            self.manager = DeploymentManager(self.events, self.config.device.id,
                                             context=lambda: context_from_config(self.config, self.watchlist),
                                             config=self.config.deployment, wipe_watchlist=wipe, audit=self.audit)
            self.manager.load()
        except BaseException:
            self.close()
            raise

    def close(self):
        self.events.close()
        if self.watchlist is not None:
            self.watchlist.close()


def _print(record: DeploymentRecord | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, indent=2))
        return
    if record is None:
        print("no deployment is active: the camera may show a preview, but no face is checked")
        return
    loc = record["location"]
    wl = record["watchlist"]
    print(f"deployment {record['id']}")
    for k, v in (("authorised by", record["authorised_by"]), ("purpose", record["purpose"]),
                 ("location", loc["text"] + (f" ({loc['lat']}, {loc['lon']})" if loc.get("lat") is not None else "")),
                 ("DPIA", record["dpia_ref"]), ("started", record["starts_at"]), ("planned end", record["planned_end"]),
                 ("ended", f"{record['ended_at']} ({record['end_reason']}, by {record['ended_by']})"
                  if record.get("ended_at") else "not yet"),
                 ("watchlist", f"{wl['id']} v{wl['version']}, {wl.get('subjects')} subjects, {wl['sha256'][:16]}…"),
                 ("threshold", record["threshold"]),
                 ("model", f"{record['model']['id']} {record['model']['sha256'][:16]}…")):
        print(f"  {k:14} {v}")


def run_start(args: argparse.Namespace) -> int:
    parts = _Parts(args)
    try:
        if args.until:
            try:
                planned = parse_time(args.until)
            except ValueError:
                raise DeploymentError(f"--until {args.until!r} is not a time (e.g. 2026-11-26T18:00:00Z)") from None
        else:
            planned = utcnow() + timedelta(hours=args.hours)
        req = DeploymentRequest(authorised_by=args.officer, purpose=args.purpose, location_text=args.location,
                                lat=args.lat, lon=args.lon, dpia_ref=args.dpia, planned_end=planned)
        record = parts.manager.start(req, source="cli")
    finally:
        parts.close()
    _print(record, args.json)
    return 0


def run_end(args: argparse.Namespace) -> int:
    parts = _Parts(args)
    try:
        record = parts.manager.end("officer", by=args.officer, deployment_id=args.id)
    finally:
        parts.close()
    if record is None:
        raise DeploymentError("no deployment is active")
    _print(record, args.json)
    return 0


def run_status(args: argparse.Namespace) -> int:
    parts = _Parts(args)
    try:
        parts.manager.check()  # a deployment past its planned end is ended now
        record = parts.manager.active()
    finally:
        parts.close()
    _print(record, args.json)
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    events = open_events(config)
    try:
        rows = list_deployments(events)
    finally:
        events.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no deployments yet")
    for r in rows:
        state = f"ended {r['ended_at']} ({r['end_reason']})" if r.get("ended_at") else "ACTIVE"
        print(f"{r['id']:24} {r['starts_at']}  {r['authorised_by']:12} {state}  {r['location']['text'][:40]}")
    return 0
