"""A stand-in van for fault tests and demos: a burst of alerts and decisions through the real outbox.

    python -m appliance.events.burst --data-dir DIR --device van-01 --broker mqtts://host:port \
        --ca ca.crt --cert van-01.crt --key van-01.key --count 100 --interval 0.05

Each alert is followed by an officer's decision on it. Counting resumes from what the events database
already holds, so a burst killed half-way and started again continues where it stopped. Prints one line
per committed event ("alert N <event id>", "decision N <event id>"), then "done" once the control room
has confirmed everything (or, without receipts, the broker has acknowledged everything). The crops are
synthetic images, not faces.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from appliance.events.models import Alert, Decision
from appliance.events.publisher import OutboxPublisher
from appliance.events.status import StatusReporter
from appliance.events.store import EventStore
from appliance.keys.keypairs import load_verify_key
from appliance.storage import KeyFileProvider
from appliance.sync.mqtt import MqttSettings


def synthetic_crop(i: int) -> bytes:
    """A small JPEG that is not a face (a gradient with the alert's number in it)."""
    img = np.tile(np.linspace(40, 200, 112, dtype=np.uint8), (112, 1))
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    cv2.putText(img, str(i), (10, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 255), 2)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return buf.tobytes()


def decide(store: EventStore, device: str, alert_id: str, i: int) -> None:
    decision = Decision(device_id=device, alert_id=alert_id, officer_id="PC-0001",
                        decision=("confirm", "reject", "unsure")[i % 3])
    store.add_decision(decision)
    print(f"decision {i} {decision.event_id}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.events.burst", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--ca", type=Path)
    ap.add_argument("--cert", type=Path)
    ap.add_argument("--key", type=Path)
    ap.add_argument("--count", type=int, default=100, help="alerts in total (each with one decision)")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between alerts")
    ap.add_argument("--receipt-timeout", type=float, default=30.0)
    ap.add_argument("--no-receipts", action="store_true")
    ap.add_argument("--control-room-key", type=Path, metavar="FILE",
                    help="the pinned control-room Ed25519 public key: only receipts it signed are believed")
    ap.add_argument("--status-interval", type=float, default=30.0)
    ap.add_argument("--retry-max", type=float, default=30.0, help="longest wait between first-connect attempts")
    ap.add_argument("--hold", action="store_true", help="keep running after 'done' until SIGTERM")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = EventStore.open(args.data_dir, KeyFileProvider(args.data_dir / "keys"))
    reporter = StatusReporter(args.device, store)
    reporter.update(state="running", fps=25.0, model_id="burst-model", threshold=0.5,
                    watchlist={"id": "wl-burst", "version": 1, "expires_at": None})
    settings = MqttSettings.from_url(args.broker, f"{args.device}-events", ca_file=args.ca, cert_file=args.cert,
                                     key_file=args.key)
    pub = OutboxPublisher(store, settings, args.device, status=reporter, receipts=not args.no_receipts,
                          receipt_timeout_s=args.receipt_timeout, status_interval_s=args.status_interval,
                          retry_max_s=args.retry_max,
                          verify_key=load_verify_key(args.control_room_key) if args.control_room_key else None).start()
    start = store.counters()["alerts"]
    for a in store.alerts(limit=3):  # killed between an alert and its decision: decide it now
        if a["latest_decision"] is None:
            decide(store, args.device, a["event_id"], a["track_id"])
    for i in range(start + 1, args.count + 1):
        if stop.is_set():
            break
        alert = Alert(device_id=args.device, subject_id=f"S-{i % 7:03d}", category="wanted", score=0.61,
                      threshold=0.5, track_id=i, looks=2, model_id="burst-model", watchlist_id="wl-burst",
                      watchlist_version=1, crop_jpeg=synthetic_crop(i))
        store.add_alert(alert)
        print(f"alert {i} {alert.event_id}", flush=True)
        decide(store, args.device, alert.event_id, i)
        stop.wait(args.interval)
    key = "unsent" if args.no_receipts else "unreceived"
    while not stop.is_set() and store.outbox_stats()[key]:
        time.sleep(0.1)
    if not stop.is_set():
        print(f"done published={pub.published} go_backs={pub.go_backs}", flush=True)
        if args.hold:
            stop.wait()
    pub.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
