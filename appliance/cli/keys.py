"""`appliance keys generate|show`: the control room's signing pair and a device's key pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.keys.keypairs import CONTROL_ROOM, describe, generate_control_room, generate_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="generate or show key pairs (control-room signing, device encryption/identity)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = actions.add_parser("generate", help="write a new key pair set; private files are mode 0600")
    g.add_argument("role", choices=["control-room", "device"], help="whose key pair to make")
    g.add_argument("--out", type=Path, required=True, help="folder to write the key files into")
    g.add_argument("--name", help="file name stem (default: control-room, or device)")
    g.set_defaults(func=run_generate)
    s = actions.add_parser("show", help="print the kind and key id of PEM key files")
    s.add_argument("files", nargs="+", type=Path, help="public or private key files (PEM or raw)")
    s.set_defaults(func=run_show)


def run_generate(args: argparse.Namespace) -> int:
    if args.role == "control-room":
        written = generate_control_room(args.out, args.name or CONTROL_ROOM)
    else:
        written = generate_device(args.out, args.name or "device")
    for w in written:
        print(f"{w.kind:8} key id {w.key_id}  private {w.private_path} (0600)  public {w.public_path}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    for f in args.files:
        print(describe(f))
    return 0
