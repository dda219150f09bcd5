"""Nothing is lost: a burst of 100 alerts, each with an officer's decision, published through the outbox by a
real van process while the broker is SIGKILLed and restarted, the van is SIGKILLed and restarted, and the
link is cut (the broker stopped for a while). The control-room receiver (`appliance control listen`, with
an SQLCipher database) must end up with every alert and decision exactly once, in the van's order."""

from __future__ import annotations

import time

from outbox_helpers import (
    check_exactly_once_in_order,
    control_arrivals,
    kill_broker,
    receiver,
    van,
    van_outbox,
)

COUNT = 100
# Recovery must come from reconnects, gap receipts and the receiver's hello, not from waiting out a timeout.
NO_TIMEOUT = 600


def test_burst_survives_broker_kill_van_kill_and_link_cut(tls_broker, tmp_path):
    data, db, keys = tmp_path / "van-01", tmp_path / "control.db", tmp_path / "control-keys"
    rx = receiver(tls_broker, db, keys)
    v = van(tls_broker, data, count=COUNT, receipt_timeout=NO_TIMEOUT)
    try:
        v.wait_line(r"^alert 20 ", 30)
        kill_broker(tls_broker)                     # 1. broker SIGKILLed mid-burst (loses unsaved state)
        time.sleep(1.5)
        tls_broker.start()
        v.wait_line(r"^alert 45 ", 30)
        v.kill()                                    # 2. van SIGKILLed mid-burst
        v_lines = list(v.lines)
        v = van(tls_broker, data, count=COUNT, receipt_timeout=NO_TIMEOUT)      # ... and restarted on the same outbox
        v.wait_line(r"^alert 70 ", 30)
        tls_broker.stop()                           # 3. link cut: broker gone for 4 s while alerts happen
        time.sleep(4)
        tls_broker.start()
        done = v.wait_line(r"^done ", 60)
        assert v.proc.wait(15) == 0
    finally:
        v.kill()
        rc = rx.terminate()
    assert rc == 0
    outbox = van_outbox(data)
    assert len(outbox) == 2 * COUNT
    assert all(r["sent_at"] and r["received_at"] for r in outbox)
    n = check_exactly_once_in_order(outbox, control_arrivals(db, keys, "van-01"), rx.lines)
    stats = rx.lines[-1]
    print(f"\nchecked {n} events ({COUNT} alerts + {COUNT} decisions) from van-01: each arrived exactly once, in "
          f"order, through a broker SIGKILL, a van SIGKILL and a 4 s link cut; van 1st run printed "
          f"{sum(1 for line in v_lines if line.startswith(('alert', 'decision')))} events before SIGKILL; "
          f"van {done}; receiver {stats}")
