"""Receipt timeout: events the broker acknowledged but nobody stored (no control-room subscriber yet, so the
broker dropped them) are published again once no receipt came for the timeout, and then arrive once, in
order. PUBACK alone would have marked them done."""

from __future__ import annotations

import time

from outbox_helpers import check_exactly_once_in_order, control_arrivals, receiver, van, van_outbox


def test_unconfirmed_events_are_sent_again_after_the_receipt_timeout(tls_broker, tmp_path):
    tls_broker.issue("van-04")
    data, db = tmp_path / "van-04", tmp_path / "control.db"
    v = van(tls_broker, data, count=3, interval=0, device="van-04", receipt_timeout=2)
    try:
        v.wait_line(r"^decision 3 ", 30)
        deadline = time.monotonic() + 15
        while not all(r["sent_at"] for r in van_outbox(data)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(r["sent_at"] for r in van_outbox(data)), "the broker never acknowledged the events"
        assert not any(r["received_at"] for r in van_outbox(data))
        rx = receiver(tls_broker, db)    # a fresh receiver: it knows no stream, so no hello; only the timeout helps
        try:
            v.wait_line(r"^done ", 30)
            assert any("no receipt progress" in line for line in v.lines)
        finally:
            rc = rx.terminate()
    finally:
        v.kill()
    assert rc == 0
    n = check_exactly_once_in_order(van_outbox(data), control_arrivals(db, None, "van-04"), rx.lines)
    print(f"\nchecked {n} events acknowledged by the broker but lost to a missing subscriber: sent again after "
          "the receipt timeout, each arrived once")
