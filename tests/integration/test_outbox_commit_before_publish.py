"""The outbox row is committed before anything is published: a van SIGKILLed right after an alert (and its
decision) were stored still delivers them after it restarts. With the broker down at that moment the
events provably had not been published yet; with the broker up the kill races the publisher."""

from __future__ import annotations

import pytest
from outbox_helpers import check_exactly_once_in_order, control_arrivals, receiver, van, van_outbox


@pytest.mark.parametrize("broker_down", [True, False], ids=["broker-down", "broker-up"])
def test_killed_right_after_an_alert_still_delivers_it(tls_broker, tmp_path, broker_down):
    data, db = tmp_path / "van-01", tmp_path / "control.db"
    rx = receiver(tls_broker, db)  # subscribed first: its persistent session queues what comes while it is away
    try:
        if broker_down:
            tls_broker.stop()
        v = van(tls_broker, data, count=1, interval=0)
        v.wait_line(r"^decision 1 ", 30)
        v.kill()                                    # right after the commit, before (or while) publishing
        before = van_outbox(data)
        assert [r["topic"] for r in before] == ["alerts", "decisions"]
        if broker_down:
            assert not any(r["sent_at"] for r in before), "published while the broker was down?"
            tls_broker.start()
        v = van(tls_broker, data, count=1, interval=0)  # restart: nothing new to add, only the outbox to drain
        v.wait_line(r"^done ", 30)
        assert v.proc.wait(15) == 0
        assert not any(line.startswith("alert ") for line in v.lines), "the restarted van made a new alert"
    finally:
        if tls_broker.proc is None:
            tls_broker.start()
        rc = rx.terminate()
    assert rc == 0
    outbox = van_outbox(data)
    n = check_exactly_once_in_order(outbox, control_arrivals(db, None, "van-01"), rx.lines)
    print(f"\nchecked {n} events (1 alert + its decision) committed before a SIGKILL "
          f"({'broker down' if broker_down else 'broker up'}): delivered exactly once after the restart")
