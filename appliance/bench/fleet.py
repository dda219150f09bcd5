"""Fleet load test: N simulated vans on one TLS Mosquitto (the deployed config and ACL, loopback only), each raising
alerts, officers' decisions and status through the real outbox (SQLCipher) and publisher, with the control-room
receiver (`ControlReceiver`, SQLCipher, signed receipts) storing everything. Reports throughput, end-to-end
latency (the alert's `created_at` on the van to its commit at the control room) and that nothing was lost,
duplicated or stored out of order. It starts and stops its own broker and stops by itself.

    python -m appliance.bench.fleet --vans 200 --alerts 5 --interval 2 [--out fleet.json]

Each van is one process-local `OutboxPublisher` with its own events database and its own client certificate,
so 200 vans are 200 TLS connections, 200 databases and 400 threads in this one process, on one machine: the
figures are a floor for one broker and one receiver, not for a van.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def run(vans: int = 200, alerts: int = 5, interval: float = 2.0, timeout: float = 600.0, workdir: Path | None = None,
        log=print) -> dict:
    """Run the load test; returns the figures (see the module docstring)."""
    from appliance.control.receiver import ControlReceiver
    from appliance.control.store import ControlStore, open_control_db
    from appliance.events.burst import synthetic_crop
    from appliance.events.models import Alert, Decision
    from appliance.events.publisher import OutboxPublisher
    from appliance.events.status import StatusReporter
    from appliance.events.store import EventStore
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
    signing = Ed25519PrivateKey.generate()
    control = ControlStore(open_control_db(root / "control.db", KeyFileProvider(root / "control.db.keys")))
    rx = ControlReceiver(broker.settings("control-room", "fleet-receiver"), control, out=lambda _: None,
                         signing_key=signing, crop_days=None).start()
    stores, pubs = [], []
    try:
        for name in names:
            data = root / "vans" / name
            store = EventStore.open(data, KeyFileProvider(data / "keys"))
            status = StatusReporter(name, store)
            status.update(state="running", fps=25.0, model_id="fleet-model", threshold=0.5,
                          watchlist={"id": "wl-fleet", "version": 1, "expires_at": None})
            pub = OutboxPublisher(store, broker.settings(name, name), name, status=status,
                                  verify_key=signing.public_key(), receipt_timeout_s=30, status_interval_s=30,
                                  retry_max_s=5)
            stores.append(store)
            pubs.append(pub.start())
            time.sleep(0.02)  # a van fleet does not connect in the same millisecond; 200 TLS handshakes at once
            # on a loaded 2-core machine time out and back off
        deadline = time.monotonic() + 300
        while not all(p.link["state"] == "up" for p in pubs):
            if time.monotonic() > deadline:
                raise SystemExit(f"fleet: only {sum(p.link['state'] == 'up' for p in pubs)} of {vans} vans connected")
            time.sleep(0.2)
        setup_s = time.monotonic() - t_setup
        log(f"fleet: {vans} vans connected over TLS in {setup_s:.1f} s (certificates, databases, connections)")
        crop = synthetic_crop(0)
        t0 = time.monotonic()
        for r in range(alerts):  # rounds: every van raises an alert and an officer decides on it
            round_start = time.monotonic()
            for name, store in zip(names, stores, strict=True):
                a = Alert(device_id=name, subject_id=f"S-{r}", category="wanted", score=0.7, threshold=0.5,
                          track_id=r, model_id="fleet-model", watchlist_id="wl-fleet", watchlist_version=1,
                          crop_jpeg=crop)
                store.add_alert(a)
                store.add_decision(Decision(device_id=name, alert_id=a.event_id, officer_id="PC-1",
                                            decision=("confirm", "reject", "unsure")[r % 3]))
            log(f"fleet: round {r + 1}/{alerts}: {2 * vans} events committed in "
                f"{time.monotonic() - round_start:.1f} s")
            if r + 1 < alerts:
                time.sleep(max(0.0, interval - (time.monotonic() - round_start)))
        produced_s = time.monotonic() - t0
        expected = 2 * vans * alerts
        deadline = time.monotonic() + timeout
        while True:
            confirmed = sum(s.received_upto() for s in stores)
            if confirmed >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        drained_s = time.monotonic() - t0
        # Checks: exactly once, in order, per van; and the latency of each event.
        lost = duplicated = out_of_order = 0
        for name, store in zip(names, stores, strict=True):
            outbox = [r["event_id"] for r in store.outbox(limit=10**6)]
            got = [a["event_id"] for a in control.arrivals(name)]
            lost += len(set(outbox) - set(got))
            duplicated += len(got) - len(set(got))
            out_of_order += int(got != outbox and not (set(outbox) - set(got)))
        with control.lock:
            rows = control.db.conn.execute(
                "SELECT created_at, received_at FROM alerts UNION ALL SELECT created_at, received_at FROM decisions"
            ).fetchall()
            statuses = control.db.conn.execute("SELECT count(*) FROM status").fetchone()[0]
        latency_ms = [(_parse(rcv) - _parse(made)) * 1000 for made, rcv in rows]
        stored = len(rows)
        result = {
            "command": f"python -m appliance.bench.fleet --vans {vans} --alerts {alerts} --interval {interval:g}",
            "vans": vans, "alerts_per_van": alerts, "events_expected": expected, "events_stored": stored,
            "lost": lost, "duplicated": duplicated, "vans_out_of_order": out_of_order,
            "receipts_confirmed": sum(s.received_upto() for s in stores), "status_rows": statuses,
            "setup_s": round(setup_s, 1), "produce_s": round(produced_s, 1), "drain_s": round(drained_s, 1),
            "throughput_events_per_s": round(stored / drained_s, 1) if drained_s else None,
            "latency_ms": {"p50": round(_pct(latency_ms, 50), 1), "p95": round(_pct(latency_ms, 95), 1),
                           "p99": round(_pct(latency_ms, 99), 1), "max": round(max(latency_ms, default=0), 1),
                           "mean": round(statistics.fmean(latency_ms), 1) if latency_ms else None},
            "receiver": dict(rx.stats), "publishes": sum(p.published for p in pubs),
            "receipts_refused": sum(p.receipts_refused for p in pubs),
        }
        return result
    finally:
        stoppers = [threading.Thread(target=p.stop, daemon=True) for p in pubs]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(10)
        rx.stop()
        control.close()
        for s in stores:
            s.close()
        broker.stop()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.bench.fleet", description=__doc__.split("\n\n")[0])
    ap.add_argument("--vans", type=int, default=200)
    ap.add_argument("--alerts", type=int, default=5, help="alerts per van (each gets one decision)")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between rounds of alerts")
    ap.add_argument("--timeout", type=float, default=600.0, help="longest wait for the receipts after the last round")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args(argv)
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
