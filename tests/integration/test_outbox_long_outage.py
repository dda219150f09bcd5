"""The broker is stopped for 30 s while alerts keep happening (the issue's outage): every alert and decision
made before, during and after it arrives exactly once, in order, and the van catches up within seconds
of the broker's return. Prints how long the catch-up took (most of it is the client's reconnect back-off)."""

from __future__ import annotations

import os
import time

from outbox_helpers import check_exactly_once_in_order, control_arrivals, receiver, van, van_outbox

OUTAGE_S = float(os.environ.get("LFR_OUTAGE_S", "30"))
COUNT = 40


def test_broker_down_30_s_while_alerts_happen(tls_broker, tmp_path):
    data, db = tmp_path / "van-01", tmp_path / "control.db"
    rx = receiver(tls_broker, db)
    v = van(tls_broker, data, count=COUNT, interval=OUTAGE_S / 60)  # alerts keep coming through the outage
    try:
        v.wait_line(r"^alert 5 ", 30)
        tls_broker.stop()
        stopped = time.monotonic()
        v.wait_line(rf"^decision {COUNT} ", OUTAGE_S)
        assert time.monotonic() - stopped < OUTAGE_S, "the alerts were not all made during the outage"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        tls_broker.start()
        back = time.monotonic()
        v.wait_line(r"^done ", 90)
        caught_up = time.monotonic() - back
        assert v.proc.wait(15) == 0
    finally:
        v.kill()
        rc = rx.terminate()
    assert rc == 0
    n = check_exactly_once_in_order(van_outbox(data), control_arrivals(db, None, "van-01"), rx.lines)
    print(f"\nchecked {n} events ({COUNT} alerts + {COUNT} decisions) across a {OUTAGE_S:.0f} s broker outage: "
          f"exactly once, in order; all confirmed {caught_up:.1f} s after the broker came back")
