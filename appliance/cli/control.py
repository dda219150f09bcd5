"""`appliance control listen`: the control-room receiver (validate, de-duplicate, store, print one line each)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("control", help="control-room tools: receive alerts, decisions and status from the vans")
    csub = p.add_subparsers(dest="control_command", metavar="SUBCOMMAND", required=True)
    lp = csub.add_parser(
        "listen",
        help="subscribe to every van, validate and store alerts/decisions/deployments, print a line for each",
        description="Runs until Ctrl-C or SIGTERM. Every payload is checked against its JSON Schema; invalid ones "
        "are refused with one line. Events are stored once per event id (redelivery changes nothing) and, for "
        "vans that ask for receipts, strictly in each van's outbox order. Crops are stored, never printed.",
    )
    lp.add_argument("--broker", required=True, help="broker URL, mqtts://host[:8883]")
    lp.add_argument("--db", type=Path, required=True, help="the control room's database file (created if absent)")
    lp.add_argument("--ca", type=Path, help="CA certificate of the broker (PEM)")
    lp.add_argument("--cert", type=Path, help="control-room client certificate (PEM, CN control-room)")
    lp.add_argument("--key", type=Path, help="control-room client private key (PEM, mode 0600)")
    lp.add_argument("--client-id", default="control-room-receiver", help="MQTT client id (default %(default)s)")
    lp.add_argument("--db-keys", type=Path, metavar="DIR",
                    help="the SQLCipher key's folder (created on first use, key file 0600); default DB.keys beside "
                    "the database")
    lp.add_argument("--plain-db", action="store_true",
                    help="store in plain SQLite (mode 0600) instead: only where the disk is encrypted otherwise")
    lp.add_argument("--crop-days", type=float, default=31.0, metavar="DAYS",
                    help="purge alert crops this many days after they arrived (the van's retention.crop_days; "
                    "default %(default)g)")
    lp.add_argument("--signing-key", type=Path, metavar="FILE",
                    help="the control room's Ed25519 private key (the one vans pin): receipts are signed "
                    "(lfr.receipt/2). Without it receipts are unsigned (lfr.receipt/1) and a van with a pinned key "
                    "ignores them")
    lp.add_argument("--no-receipts", action="store_true",
                    help="do not send receipts (another receiver instance confirms to the vans)")
    lp.set_defaults(func=run_listen)


def run_listen(args: argparse.Namespace) -> int:
    from appliance.control.receiver import ControlReceiver
    from appliance.control.store import ControlStore, default_keys_dir, open_control_db
    from appliance.errors import ApplianceError
    from appliance.storage import KeyFileProvider
    from appliance.sync.broker_url import parse_broker_url
    from appliance.sync.mqtt import MqttSettings

    if parse_broker_url(args.broker).tls and not (args.ca and args.cert and args.key):
        raise ApplianceError("a TLS broker (mqtts://) needs --ca, --cert and --key (the control-room certificate)")
    settings = MqttSettings.from_url(args.broker, args.client_id, ca_file=args.ca, cert_file=args.cert,
                                     key_file=args.key)
    if args.plain_db and args.db_keys:
        raise ApplianceError("--plain-db and --db-keys exclude each other")
    if args.crop_days <= 0:
        raise ApplianceError("--crop-days must be more than 0")
    keys = None if args.plain_db else (args.db_keys or default_keys_dir(args.db))
    store = ControlStore(open_control_db(args.db, KeyFileProvider(keys) if keys else None))

    def out(line: str) -> None:
        print(line, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signing_key = None
    if args.signing_key is not None:
        from appliance.keys.keypairs import load_signing_key

        signing_key = load_signing_key(args.signing_key)
    receiver = ControlReceiver(settings, store, out=out, receipts=not args.no_receipts, signing_key=signing_key,
                               crop_days=args.crop_days)
    try:
        receiver.start()
        print(f"listening on {args.broker} for lfr/v1/devices/+/#, storing into {args.db}", file=sys.stderr,
              flush=True)
        if signing_key is None and not args.no_receipts:
            print("warning: no --signing-key: receipts go out unsigned (lfr.receipt/1); vans with a pinned "
                  "control-room key ignore them", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        receiver.stop()
        store.close()
    s = receiver.stats
    print(f"stopped: {s['stored']} stored, {s['duplicates']} duplicates ignored, {s['rejected']} refused",
          file=sys.stderr, flush=True)
    return 0
