"""Fleet load test: N simulated vans on one TLS Mosquitto (the deployed config and ACL, loopback only), each raising
alerts, officers' decisions and status through the real outbox (SQLCipher) and publisher, with the control-room
receiver (`ControlReceiver`, SQLCipher, signed receipts) storing everything. Reports throughput, end-to-end
latency (the alert's `created_at` on the van to its commit at the control room) and that nothing was lost,
duplicated or stored out of order. It starts and stops its own broker and stops by itself.

    python -m appliance.bench.fleet --vans 200 --alerts 5 --interval 2 [--out fleet.json]

Each van is an `OutboxPublisher` with its own events database and its own client certificate, run in worker
processes of 50 vans (paho waits on select(), limited to 1024 descriptors per process); 200 vans are 200 TLS
connections and 200 SQLCipher databases on one machine with the broker and the receiver: the figures are a
floor for one broker and one receiver, not for a van.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance.timeutil import parse_time


def _parse(ts: str) -> float:
    return parse_time(ts).timestamp()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


VANS_PER_WORKER = 50  # paho waits on select(): one process stays well under its 1024-descriptor limit


def run(vans: int = 200, alerts: int = 5, interval: float = 2.0, timeout: float = 600.0, workdir: Path | None = None,
        log=print) -> dict:
    """Run the load test; returns the figures (see the module docstring). The vans run in worker processes of
    at most VANS_PER_WORKER each; the broker and the control-room receiver run here."""
    from appliance.control.receiver import ControlReceiver
    from appliance.control.store import ControlStore, open_control_db
    from appliance.keys.keypairs import generate_control_room, load_signing_key
    from appliance.storage import KeyFileProvider
    from appliance.sync.local_broker import TlsBroker, missing_tools

    missing = missing_tools()
    if missing:
        raise SystemExit(f"fleet: {', '.join(missing)} not installed")
    tmp = tempfile.TemporaryDirectory(prefix="lfr-fleet-") if workdir is None else None
    root = Path(tmp.name if tmp else workdir)
    names = [f"van-{i:03d}" for i in range(vans)]
    t_setup = time.monotonic()
    broker = TlsBroker(root / "broker")
    for name in names:  # one client certificate per van (CN = device id)
        broker.issue(name)
    broker.start()
    generate_control_room(root / "cr")
    signing = load_signing_key(root / "cr" / "control-room.ed25519.key")
    control = ControlStore(open_control_db(root / "control.db", KeyFileProvider(root / "control.db.keys")))
    rx = ControlReceiver(broker.settings("control-room", "fleet-receiver"), control, out=lambda _: None,
                         signing_key=signing, crop_days=None).start()
    workers: list[subprocess.Popen] = []
    try:
        for i in range(0, vans, VANS_PER_WORKER):
            chunk = names[i:i + VANS_PER_WORKER]
            args = [sys.executable, "-m", "appliance.bench.fleet", "--worker", "--workdir", str(root / "vans"),
                    "--url", broker.url, "--ca", str(broker.ca), "--pki", str(broker.pki),
                    "--pinned", str(root / "cr" / "control-room.ed25519.pub"), "--alerts", str(alerts),
                    "--interval", str(interval), "--timeout", str(timeout), *chunk]
            workers.append(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for w in workers:  # each connects its vans one at a time, then says so
            line = w.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"fleet: a worker failed before it was ready ({line.strip() or 'no output'})")
        setup_s = time.monotonic() - t_setup
        log(f"fleet: {vans} vans connected over TLS in {setup_s:.1f} s ({len(workers)} worker processes)")
        t0 = time.monotonic()
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        reports = []
        for w in workers:
            line = w.stdout.readline()
            reports.append(json.loads(line) if line.strip() else {})
            w.wait(60)
        drained_s = time.monotonic() - t0
        outboxes: dict[str, list[str]] = {}
        for r in reports:
            outboxes.update(r.get("outboxes", {}))
        expected = 2 * vans * alerts
        lost = duplicated = out_of_order = 0
        for name in names:
            outbox = outboxes.get(name, [])
            got = [a["event_id"] for a in control.arrivals(name)]
            lost += len(set(outbox) - set(got)) + max(0, 2 * alerts - len(outbox))
            duplicated += len(got) - len(set(got))
            out_of_order += int(got != outbox and not (set(outbox) - set(got)))
        with control.lock:
            rows = control.db.conn.execute(
                "SELECT created_at, received_at FROM alerts UNION ALL SELECT created_at, received_at FROM decisions"
            ).fetchall()
            statuses = control.db.conn.execute("SELECT count(*) FROM status").fetchone()[0]
            first, last = control.db.conn.execute("SELECT min(received_at), max(received_at) FROM arrivals").fetchone()
        latency_ms = [(_parse(rcv) - _parse(made)) * 1000 for made, rcv in rows]
        stored = len(rows)
        busy_s = (_parse(last) - _parse(first)) if first and last else 0.0
        return {
            "command": f"python -m appliance.bench.fleet --vans {vans} --alerts {alerts} --interval {interval:g}",
            "vans": vans, "alerts_per_van": alerts, "events_expected": expected, "events_stored": stored,
            "lost": lost, "duplicated": duplicated, "vans_out_of_order": out_of_order,
            "receipts_confirmed": sum(r.get("confirmed", 0) for r in reports), "status_rows": statuses,
            "worker_processes": len(workers), "setup_s": round(setup_s, 1), "drain_s": round(drained_s, 1),
            "first_to_last_event_s": round(busy_s, 1),
            "throughput_events_per_s": round(stored / busy_s, 1) if busy_s else None,
            "round_commit_s_max": max((r.get("round_commit_s_max", 0) for r in reports), default=None),
            "latency_ms": {"p50": round(_pct(latency_ms, 50), 1), "p95": round(_pct(latency_ms, 95), 1),
                           "p99": round(_pct(latency_ms, 99), 1), "max": round(max(latency_ms, default=0), 1),
                           "mean": round(statistics.fmean(latency_ms), 1) if latency_ms else None},
            "receiver": dict(rx.stats), "publishes": sum(r.get("published", 0) for r in reports),
            "receipts_refused": sum(r.get("receipts_refused", 0) for r in reports),
            "van_go_backs": sum(r.get("go_backs", 0) for r in reports),  # re-sends from the first unconfirmed
            "van_reconnects": sum(r.get("reconnects", 0) for r in reports),
        }
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(10)
        rx.stop()
        control.close()
        broker.stop()
        if tmp is not None:
            tmp.cleanup()


def worker(names: list[str], workdir: Path, url: str, ca: Path, pki: Path, pinned: Path, alerts: int,
           interval: float, timeout: float) -> int:
    """One worker process: its vans connect one at a time, print 'ready', wait for 'go' on stdin, raise their
    rounds of alerts and decisions, wait for every receipt, and print one JSON line (each van's outbox order)."""
    from appliance.events.burst import synthetic_crop
    from appliance.events.models import Alert, Decision
    from appliance.events.publisher import OutboxPublisher
    from appliance.events.status import StatusReporter
    from appliance.events.store import EventStore
    from appliance.keys.keypairs import load_verify_key
    from appliance.storage import KeyFileProvider
    from appliance.sync.mqtt import MqttSettings

    verify = load_verify_key(pinned)
    stores, pubs = [], []
    try:
        for name in names:
            data = workdir / name
            store = EventStore.open(data, KeyFileProvider(data / "keys"))
            status = StatusReporter(name, store)
            status.update(state="running", fps=25.0, model_id="fleet-model", threshold=0.5,
                          watchlist={"id": "wl-fleet", "version": 1, "expires_at": None})
            settings = MqttSettings.from_url(url, name, ca_file=ca, cert_file=pki / f"{name}.crt",
                                             key_file=pki / f"{name}.key")
            pub = OutboxPublisher(store, settings, name, status=status, verify_key=verify, receipt_timeout_s=30,
                                  status_interval_s=30, retry_max_s=5)
            stores.append(store)
            pubs.append(pub.start())
            # One van at a time: a burst of TLS handshakes on a shared 2-core machine misses paho's CONNACK wait
            # and backs off, which would measure the test rig, not the broker.
            if not pub.wait_link(True, 120):
                print(f"failed: {name} did not connect within 120 s", flush=True)
                return 1
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
        crop = synthetic_crop(0)
        slowest = 0.0
        for r in range(alerts):  # every van raises an alert and an officer decides on it
            round_start = time.monotonic()
            for name, store in zip(names, stores, strict=True):
                a = Alert(device_id=name, subject_id=f"S-{r}", category="wanted", score=0.7, threshold=0.5,
                          track_id=r, model_id="fleet-model", watchlist_id="wl-fleet", watchlist_version=1,
                          crop_jpeg=crop)
                store.add_alert(a)
                store.add_decision(Decision(device_id=name, alert_id=a.event_id, officer_id="PC-1",
                                            decision=("confirm", "reject", "unsure")[r % 3]))
            slowest = max(slowest, time.monotonic() - round_start)
            if r + 1 < alerts:
                time.sleep(max(0.0, interval - (time.monotonic() - round_start)))
        expected = 2 * len(names) * alerts
        deadline = time.monotonic() + timeout
        while sum(s.received_upto() for s in stores) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        report = {"outboxes": {n: [row["event_id"] for row in s.outbox(limit=10**6)]
                               for n, s in zip(names, stores, strict=True)},
                  "confirmed": sum(s.received_upto() for s in stores), "published": sum(p.published for p in pubs),
                  "receipts_refused": sum(p.receipts_refused for p in pubs), "round_commit_s_max": round(slowest, 2),
                  "go_backs": sum(p.go_backs for p in pubs), "reconnects": sum(p.link["reconnects"] for p in pubs)}
        print(json.dumps(report), flush=True)
        return 0
    finally:
        for p in pubs:
            p.stop()
        for s in stores:
            s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.bench.fleet", description=__doc__.split("\n\n")[0])
    ap.add_argument("--vans", type=int, default=200)
    ap.add_argument("--alerts", type=int, default=5, help="alerts per van (each gets one decision)")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between rounds of alerts")
    ap.add_argument("--timeout", type=float, default=600.0, help="longest wait for the receipts after the last round")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # internal: one worker process
    for hidden in ("--workdir", "--url", "--ca", "--pki", "--pinned"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        import logging

        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        return worker(args.names, Path(args.workdir), args.url, Path(args.ca), Path(args.pki), Path(args.pinned),
                      args.alerts, args.interval, args.timeout)
    if args.vans < 1 or args.alerts < 1:
        ap.error("--vans and --alerts must be at least 1")
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    result = run(args.vans, args.alerts, args.interval, args.timeout, log=lambda s: print(s, flush=True))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["vans_out_of_order"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
