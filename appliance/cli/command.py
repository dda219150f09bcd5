"""`appliance command revoke|end-deployment|start-deployment`: the control room signs a command, sends it to
a van over MQTT and prints the van's ack (exit 0 done, 1 refused or failed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from appliance.commands.sender import CommandSender
from appliance.keys.keypairs import load_signing_key
from appliance.sync.mqtt import MqttSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("command", help="control room: send a signed command to a van and wait for its ack")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    rv = actions.add_parser("revoke", help="stop matching, erase the watchlist, end the deployment")
    rv.add_argument("--watchlist", metavar="ID", help="only if this watchlist is the one loaded")
    rv.add_argument("--reason", help="recorded in the van's audit log")
    ed = actions.add_parser("end-deployment", help="end the van's active deployment")
    ed.add_argument("--deployment", metavar="ID", help="only if this is the active deployment")
    ed.add_argument("--reason", help="why the control room ends it (audited on the van)")
    sd = actions.add_parser("start-deployment", help="start a deployment on the van with its loaded watchlist")
    sd.add_argument("--officer", required=True, metavar="ID", help="the authorising officer")
    sd.add_argument("--purpose", required=True, help="what the deployment is for (shown to officers, audited)")
    sd.add_argument("--location", required=True, metavar="TEXT", help="where the van operates")
    sd.add_argument("--lat", type=float, help="latitude of the location (optional)")
    sd.add_argument("--lon", type=float, help="longitude of the location (optional)")
    sd.add_argument("--dpia", required=True, metavar="REF", help="the data protection impact assessment it runs under")
    sd.add_argument("--until", required=True, metavar="TIME", help="planned end, ISO 8601 UTC")
    for a in (rv, ed, sd):
        a.add_argument("--device", required=True, help="the van's device id")
        a.add_argument("--signing-key", type=Path, required=True, help="control room Ed25519 private key")
        a.add_argument("--broker", required=True, help="mqtts://host:port")
        a.add_argument("--ca", type=Path, required=True, help="CA certificate of the broker")
        a.add_argument("--cert", type=Path, required=True, help="control room client certificate")
        a.add_argument("--key", type=Path, required=True, help="control room client key (0600)")
        a.add_argument("--client-id", default="control-room-commands", help="MQTT client id of this sender")
        a.add_argument("--lifetime", type=int, default=600, metavar="S", help="seconds the command stays valid")
        a.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for the ack")
        a.set_defaults(func=run)


def _args(args: argparse.Namespace) -> tuple[str, dict]:
    if args.action == "revoke":
        return "revoke_watchlist", {k: v for k, v in (("watchlist_id", args.watchlist), ("reason", args.reason)) if v}
    if args.action == "end-deployment":
        return "end_deployment", {k: v for k, v in (("deployment_id", args.deployment), ("reason", args.reason)) if v}
    from appliance.errors import ApplianceError
    from appliance.watchlist.timeutil import normalise_time

    try:
        until = normalise_time(args.until)
    except ValueError:
        raise ApplianceError(f"--until {args.until!r} is not a time (e.g. 2026-11-26T18:00:00Z)") from None
    return "start_deployment", {"authorised_by": args.officer, "purpose": args.purpose,
                                "location": {"text": args.location, "lat": args.lat, "lon": args.lon},
                                "dpia_ref": args.dpia, "planned_end": until}


def run(args: argparse.Namespace) -> int:
    kind, cmd_args = _args(args)
    settings = MqttSettings.from_url(args.broker, args.client_id, ca_file=args.ca, cert_file=args.cert,
                                     key_file=args.key)
    sender = CommandSender(settings, load_signing_key(args.signing_key)).connect()
    try:
        ack = sender.send(args.device, kind, cmd_args, lifetime_s=args.lifetime, timeout=args.timeout)
    finally:
        sender.close()
    print(json.dumps(ack, indent=2))
    return 0 if ack.get("status") == "done" else 1
