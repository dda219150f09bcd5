"""PUBACK semantics without receipts: a row is marked sent only when the broker acknowledged it. While the
broker is down nothing is marked sent and the backlog stays; once it is back every row is sent, in order,
and the receiver stores each event once."""

from __future__ import annotations

import time

from outbox_helpers import check_exactly_once_in_order, control_arrivals, receiver

from appliance.events import Alert, Decision, EventStore
from appliance.events.burst import synthetic_crop
from appliance.events.publisher import OutboxPublisher
from appliance.storage import KeyFileProvider


def _alert(i: int) -> Alert:
    return Alert(device_id="van-02", subject_id="S-001", category="wanted", score=0.6, threshold=0.5, track_id=i,
                 model_id="m", watchlist_id="wl", watchlist_version=1, crop_jpeg=synthetic_crop(i))


def test_rows_are_marked_sent_only_on_puback(tls_broker, tmp_path):
    db = tmp_path / "control.db"
    rx = receiver(tls_broker, db)
    store = EventStore.open(tmp_path / "van-02", KeyFileProvider(tmp_path / "keys"))
    pub = OutboxPublisher(store, tls_broker.settings("van-02", "van-02-events"), "van-02", receipts=False).start()
    try:
        assert pub.wait_link(True, 15)
        tls_broker.stop()
        assert pub.wait_link(False, 10)
        for i in range(5):
            a = _alert(i)
            store.add_alert(a)
            store.add_decision(Decision(device_id="van-02", alert_id=a.event_id, officer_id="PC-7", decision="unsure"))
        time.sleep(1.5)
        assert store.outbox_backlog() == 10, "rows marked sent while the broker was down"
        assert all(r["sent_at"] is None for r in store.outbox())
        tls_broker.start()
        assert store.wait_sent(30), f"backlog {store.outbox_backlog()} after the broker came back"
        assert all(r["sent_at"] for r in store.outbox())
        assert all(r["received_at"] is None for r in store.outbox())  # receipts off: PUBACK is all we know
        deadline = time.monotonic() + 15
        while len(control_arrivals(db, None, "van-02")) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        pub.stop()
        rc = rx.terminate()
    assert rc == 0
    outbox = store.outbox()
    store.close()
    n = check_exactly_once_in_order(outbox, control_arrivals(db, None, "van-02"), rx.lines)
    print(f"\nchecked {n} events published after a broker outage, marked sent only on PUBACK")
