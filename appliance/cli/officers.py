"""`appliance officers add|list|disable`: the officer accounts that may log in to the in-van console."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from appliance.config import load_config
from appliance.errors import ApplianceError
from appliance.officers import OfficerStore, check_officer_id, check_pin_format
from appliance.storage import key_provider_from_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("officers", help="manage the officer accounts of the in-van console (id + PIN)")
    p.add_argument("--config", type=Path, metavar="FILE", help="appliance TOML config (default: built-in defaults)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="add an officer; prompts twice for the PIN (6-12 digits)")
    a.add_argument("officer_id", metavar="ID", help="officer id, e.g. a collar or payroll number")
    a.add_argument("--name", help="name shown on the console (default: the id)")
    a.add_argument("--pin-stdin", action="store_true", help="read the PIN from the first line of stdin (scripts)")
    a.add_argument("--reset", action="store_true", help="the officer exists: set a new PIN and re-enable")
    a.set_defaults(func=run_add)
    ls = actions.add_parser("list", help="list officers (never their PINs)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    d = actions.add_parser("disable", help="disable an officer: their logins and open sessions stop working")
    d.add_argument("officer_id", metavar="ID", help="the officer to disable (their decisions stay on record)")
    d.set_defaults(func=run_disable)


def _store(args: argparse.Namespace) -> OfficerStore:
    config = load_config(args.config)
    return OfficerStore.open(config.device.data_dir, key_provider_from_config(config))


def _read_pin(args: argparse.Namespace) -> str:
    if args.pin_stdin:
        return sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise ApplianceError("no terminal to prompt for the PIN; use --pin-stdin")
    pin = getpass.getpass("PIN (6-12 digits): ")
    check_pin_format(pin)
    if getpass.getpass("PIN again: ") != pin:
        raise ApplianceError("the two PINs differ")
    return pin


def run_add(args: argparse.Namespace) -> int:
    check_officer_id(args.officer_id)
    pin = _read_pin(args)
    store = _store(args)
    try:
        o = store.add(args.officer_id, pin, display_name=args.name, replace=args.reset)
    finally:
        store.close()
    print(f"officer {o.id} ({o.display_name}) {'reset and enabled' if args.reset else 'added'}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        officers = store.list()
    finally:
        store.close()
    if args.json:
        print(json.dumps([o.__dict__ for o in officers], indent=2))
        return 0
    if not officers:
        print("no officers; add one with `appliance officers add ID`")
    for o in officers:
        state = "active  " if o.active else "disabled"
        print(f"{o.id:16} {state} {o.display_name:24} last login {o.last_login_at or 'never'}")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        o = store.disable(args.officer_id)
    finally:
        store.close()
    print(f"officer {o.id} disabled")
    return 0
