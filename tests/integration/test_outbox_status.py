"""The retained status topic: a control room that subscribes late gets each van's last status at once (valid
against status.json); a van that dies (SIGKILL) is reported 'offline' by its last will, retained; a van
that stops cleanly says 'offline' itself."""

from __future__ import annotations

import json
import queue

from outbox_helpers import van

from appliance.events.schemas import payload_error
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection

DEVICE = "van-03"


def _subscriber(broker, client_id: str) -> tuple[MqttConnection, queue.Queue]:
    q: queue.Queue = queue.Queue()
    conn = MqttConnection(broker.settings("control-room", client_id), clean_start=True,
                          on_message=lambda m: q.put((bool(m.retain), json.loads(m.payload))))
    conn.connect()
    conn.subscribe(topics.status(DEVICE), 1)
    return conn, q


def _next_status(q: queue.Queue, state: str, timeout: float = 15) -> tuple[bool, dict]:
    while True:
        retained, p = q.get(timeout=timeout)
        assert payload_error(p, "lfr.status/1") is None, payload_error(p)
        if p["state"] == state:
            return retained, p


def test_status_retained_last_will_and_clean_stop(tls_broker, tmp_path):
    tls_broker.issue(DEVICE)
    data = tmp_path / DEVICE
    # No receiver in this test, so no receipts: "done" once the broker has acknowledged everything.
    v = van(tls_broker, data, count=2, interval=0, device=DEVICE,
            extra=("--hold", "--no-receipts", "--status-interval", "1"))
    conns = []
    try:
        v.wait_line(r"^done ", 30)
        late, q = _subscriber(tls_broker, "cr-status-1")   # connects after the van published: retained
        conns.append(late)
        retained, p = _next_status(q, "running")
        assert retained
        assert p["device_id"] == DEVICE and p["link"]["state"] == "up"
        assert p["watchlist"]["id"] == "wl-burst" and p["model_id"] == "burst-model"
        retained, p = _next_status(q, "running")               # and again every status interval, up to date
        assert not retained and p["outbox_backlog"] == 0
        assert p["counters"]["alerts"] == 2 and p["counters"]["pending"] == 0
        assert p["counters"]["confirmed"] + p["counters"]["rejected"] + p["counters"]["unsure"] == 2

        v.kill()                                               # dies without a word: the broker speaks for it
        _, p = _next_status(q, "offline")
        assert p["detail"] == "connection lost (last will)"
        again, q2 = _subscriber(tls_broker, "cr-status-2")
        conns.append(again)
        retained, p = _next_status(q2, "offline")
        assert retained and p["detail"] == "connection lost (last will)"

        v = van(tls_broker, data, count=2, interval=0, device=DEVICE, extra=("--hold", "--no-receipts"))
        _next_status(q2, "running")
        assert v.terminate() == 0                             # clean stop: says offline itself, no last will
        _, p = _next_status(q2, "offline")
        assert p["detail"] == "stopped" and p["counters"]["alerts"] == 2
    finally:
        v.kill()
        for c in conns:
            c.close()
