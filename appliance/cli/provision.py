"""`appliance provision`: a technician gives this device its id, keys, broker and pinned control-room key."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from appliance.config import DEFAULT_CONFIG_PATH
from appliance.device.provision import SERVICE_USER, format_result, provision


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "provision",
        help="create this device's keys, database keys, TLS key + CSR; pin the control-room key; write the config",
        description="Idempotent: running it again keeps existing keys and fills in what is missing (e.g. the "
        "signed certificate). It never replaces a key without --force.",
    )
    p.add_argument("--device-id", required=True, help="this device's id (the TLS CN and MQTT username)")
    p.add_argument("--broker", required=True, help="broker URL, mqtts://host[:8883]")
    p.add_argument("--control-room-key", type=Path, required=True,
                   help="the control room's Ed25519 public key (PEM) to pin: only watchlists it signed are accepted")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                   help=f"config file to write ({DEFAULT_CONFIG_PATH})")
    p.add_argument("--data-dir", type=Path, help="data directory (default /var/lib/appliance, or the config's)")
    p.add_argument("--key-provider", choices=["file", "rpi-otp", "env"],
                   help="where database keys come from (default: file; rpi-otp on a Pi with a programmed OTP key)")
    p.add_argument("--ca", type=Path, help="the broker CA certificate (PEM) to install")
    p.add_argument("--cert", type=Path, help="this device's signed client certificate (PEM), from the CSR")
    p.add_argument("--source", help="camera URI to write into the config (e.g. picamera2:0, v4l2:/dev/lfr-camera)")
    p.add_argument("--time-server", action="append", dest="time_servers", metavar="HOST[:PORT]",
                   help="an NTP server the self-test measures the clock against (repeat for more; "
                   "the same servers as chrony's)")
    p.add_argument("--console-bind", metavar="ADDR",
                   help="serve the console on this van-network address (for a tablet), over HTTPS with a "
                   "certificate made here; default 127.0.0.1 (a screen on the device)")
    p.add_argument("--models-dir", type=Path, help="installed models folder to write into the config")
    p.add_argument("--owner", default=SERVICE_USER,
                   help=f"account that owns the data when run as root ({SERVICE_USER})")
    p.add_argument("--force", action="store_true", help="replace existing keys (crypto-erases the databases)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = provision(
        device_id=args.device_id, broker=args.broker, control_room_key=args.control_room_key,
        config_path=args.config, data_dir=args.data_dir, key_provider=args.key_provider, ca_file=args.ca,
        cert_file=args.cert, source=args.source, models_dir=args.models_dir,
        time_servers=args.time_servers, console_bind=args.console_bind, force=args.force, owner=args.owner,
    )
    print(json.dumps(asdict(result), indent=2, default=str) if args.json else format_result(result))
    return 0
