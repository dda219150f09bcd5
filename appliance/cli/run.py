"""`appliance run [--config FILE] [--source URI]`: the daemon (systemd runs this)."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.config import load_config
from appliance.device.logging import setup_logging


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the appliance daemon (capture, match, alert, console, MQTT)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config (default /etc/appliance/appliance.toml)")
    p.add_argument("--source", metavar="URI", help="camera source, overriding capture.source")
    p.add_argument("--no-mqtt", action="store_true", help="run without the broker (bench, offline demo)")
    p.add_argument("--no-console", action="store_true", help="do not serve the in-van console")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.daemon.service import Appliance

    path = args.config
    if path is None and Path("/etc/appliance/appliance.toml").is_file():
        path = Path("/etc/appliance/appliance.toml")
    config = load_config(path)
    setup_logging(verbose=args.verbose, device_id=config.device.id)
    app = Appliance(config, config_path=path, source=args.source, with_mqtt=not args.no_mqtt,
                    with_console=not args.no_console)
    return app.run_forever()
