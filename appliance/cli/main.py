"""`appliance` command: parses arguments, dispatches to one module per command, turns errors into one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from appliance import __version__
from appliance.errors import ApplianceError

# One module per command (appliance/cli/<name>.py, each with `register(subparsers)`).
COMMAND_MODULES = [
    "models",
    "keys",
    "watchlist",
    "detect",
    "identify",
    "eval",
    "selftest",
    "provision",
    "control",
    "officers",
    "run",
    "deployment",
    "audit",
    "report",
    "retention",
    "command",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="Live facial recognition appliance: a person always decides; non-matches leave no trace.",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"appliance.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ApplianceError as e:
        print(f"appliance {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
