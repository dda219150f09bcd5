"""The status payload built from the daemon's fields, the store's counters and the link state."""

from __future__ import annotations

import pytest

from appliance.events.schemas import payload_error
from appliance.events.status import StatusReporter, offline_payload


class FakeStore:  # counts only: the real store is tested on SQLCipher in tests/integration
    def counters(self):
        return {"alerts": 4, "confirmed": 1, "rejected": 2, "unsure": 0, "pending": 1, "rejected_share": 0.6667}

    def outbox_backlog(self):
        return 3


def test_payload_merges_daemon_fields_counters_and_link():
    r = StatusReporter("van-01", FakeStore())
    r.update(state="running", fps=24.987, faces_seen=1234, model_id="m", threshold=0.52, deployment_id="dep-1",
             watchlist={"id": "wl", "version": 3, "expires_at": "2026-12-01T00:00:00Z", "subjects": 40})
    p = r.payload({"state": "up", "since": "2026-11-26T06:00:00.000Z", "reconnects": 1})
    assert payload_error(p, "lfr.status/1") is None, payload_error(p)
    assert p["fps"] == 24.99 and p["counters"]["faces_seen"] == 1234 and p["counters"]["rejected"] == 2
    assert p["outbox_backlog"] == 3 and p["link"]["reconnects"] == 1


def test_changed_is_set_by_significant_updates_only():
    r = StatusReporter("van-01")
    r.changed.clear()
    r.update(fps=20.0, faces_seen=5)
    assert not r.changed.is_set()
    r.update(state="degraded", detail="camera lost")
    assert r.changed.is_set()
    assert payload_error(r.payload()) is None


def test_unknown_fields_and_states_refused():
    r = StatusReporter("van-01")
    with pytest.raises(ValueError, match="unknown status fields: subject"):
        r.update(subject="S-1")
    with pytest.raises(ValueError, match="state"):
        r.update(state="asleep")


def test_offline_payload_is_valid():
    assert payload_error(offline_payload("van-01", "connection lost (last will)")) is None
