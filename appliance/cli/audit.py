"""`appliance audit verify|export|verify-export`: check the device's audit chain, export it signed, and (in the
control room) verify an export with the device's public key alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.audit.chain import verify_chain
from appliance.audit.export import check_against_head, export_lines, verify_export
from appliance.config import load_config
from appliance.daemon.assembly import open_audit, open_events
from appliance.errors import ApplianceError
from appliance.events.models import iso_ms
from appliance.events.store import EventStore
from appliance.keys.keypairs import load_verify_key
from appliance.keys.paths import identity_public_path
from appliance.watchlist.timeutil import parse_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify or export the tamper-evident audit log")
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = actions.add_parser("verify", help="check the whole chain; names the first broken entry (exit 1)")
    v.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="appliance TOML config")
    v.add_argument("--public-key", type=Path, metavar="PEM", help="device Ed25519 public key "
                   "(default: <keys>/device.ed25519.pub)")
    v.set_defaults(func=run_verify)
    e = actions.add_parser("export", help="write entries as signed JSON lines (with a signed trailer)")
    e.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="appliance TOML config")
    e.add_argument("--from", dest="from_", metavar="TIME", help="first time, ISO 8601 or a date (UTC)")
    e.add_argument("--to", metavar="TIME", help="end time (exclusive), ISO 8601 or a date (a date: the day's end)")
    e.add_argument("--out", type=Path, metavar="FILE", help="output file (default: stdout)")
    e.set_defaults(func=run_export)
    x = actions.add_parser("verify-export", help="control room: verify an export with the device's public key")
    x.add_argument("file", type=Path, metavar="FILE", help="a JSONL export written by `audit export`")
    x.add_argument("--public-key", type=Path, required=True, metavar="PEM", help="the device's Ed25519 public key")
    x.add_argument("--device", help="the device id the export must come from")
    x.add_argument("--prev", metavar="HASH", help="last hash of the previous export: checks the two join up")
    x.add_argument("--heads", type=Path, metavar="DB", help="the control room's database (appliance control listen "
                   "--db): the export, taken up to now, must reach the highest audit head seen from --device, "
                   "with the same hash (a log cut at its end fails)")
    x.add_argument("--heads-keys", type=Path, metavar="DIR", help="its key folder (default DB.keys); "
                   "--heads-plain for a plain database")
    x.add_argument("--heads-plain", action="store_true", help=argparse.SUPPRESS)
    x.set_defaults(func=run_verify_export)


def _events(config) -> EventStore:
    return open_events(config, create=False)


def run_verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    key = load_verify_key(args.public_key or identity_public_path(config))
    events = _events(config)
    try:
        with events.transaction() as db:
            report = verify_chain(db, key)
    finally:
        events.close()
    print(report.line())
    return 0 if report.ok else 1


def _time(value: str | None, end: bool) -> str | None:
    if not value:
        return None
    try:
        t = parse_time(value, end_of_day=end)
    except ValueError:
        raise ApplianceError(f"{value!r} is not a time (use 2026-11-26 or 2026-11-26T09:00:00Z)") from None
    return iso_ms(t.replace(microsecond=999000) if end and len(value) == 10 else t)


def run_export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    events = _events(config)
    try:
        audit = open_audit(config, events)
        from_at, to_at = _time(args.from_, False), _time(args.to, True)
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
        n = 0
        try:
            with events.transaction() as db:
                for line in export_lines(db, audit.signer, config.device.id, from_at=from_at, to_at=to_at):
                    out.write(line + "\n")
                    n += 1
        finally:
            if args.out:
                out.close()
        audit.record("audit.exported", "cli", {"from": from_at, "to": to_at, "entries": n - 1,
                                               "file": str(args.out) if args.out else None})
    finally:
        events.close()
    if args.out:
        print(f"wrote {n - 1} entries and a signed trailer to {args.out}", file=sys.stderr)
    return 0


def run_verify_export(args: argparse.Namespace) -> int:
    key = load_verify_key(args.public_key)
    if args.heads is not None and not args.device:
        raise ApplianceError("--heads needs --device (whose head to check against)")
    hashes: dict[int, str] = {}
    try:
        with open(args.file, encoding="utf-8") as f:
            report = verify_export(f, key, device_id=args.device, expect_prev=args.prev, hashes=hashes)
    except FileNotFoundError:
        raise ApplianceError(f"export file {args.file} not found") from None
    if args.heads is not None:
        from appliance.control.store import ControlStore, default_keys_dir, open_control_db
        from appliance.storage import KeyFileProvider

        if not args.heads.exists():
            raise ApplianceError(f"control-room database {args.heads} not found")
        provider = None if args.heads_plain else KeyFileProvider(args.heads_keys or default_keys_dir(args.heads))
        store = ControlStore(open_control_db(args.heads, provider))
        try:
            head = store.audit_head(args.device)
        finally:
            store.close()
        if head is None:
            print(f"note: the control room has seen no audit head from {args.device}")
        else:
            report = check_against_head(report, head, key, hashes)
    print(report.summary())
    if report.ok and report.trailer:
        print(f"last hash {report.trailer.get('last_hash')} (give it as --prev when checking the next export)")
    return 0 if report.ok else 1
