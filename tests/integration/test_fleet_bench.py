"""The fleet load test at a small scale (issue 12): a handful of simulated vans on one real TLS broker, with the
control-room receiver (SQLCipher, signed receipts); nothing lost, duplicated or out of order. The 200-van run
and its figures: docs/benchmarks.md (python -m appliance.bench.fleet --vans 200)."""

from __future__ import annotations

from appliance.bench.fleet import run
from appliance.sync.local_broker import missing_tools


def test_a_small_fleet_delivers_every_event_once_in_order(tmp_path):
    if missing_tools():
        import pytest

        pytest.skip("mosquitto/openssl not installed")
    r = run(vans=6, alerts=3, interval=0.3, timeout=60, workdir=tmp_path, log=lambda _: None)
    assert r["events_expected"] == 36 and r["events_stored"] == 36, r
    assert (r["lost"], r["duplicated"], r["vans_out_of_order"]) == (0, 0, 0), r
    assert r["receipts_confirmed"] == 36 and r["receipts_refused"] == 0 and r["status_rows"] == 6
    assert r["latency_ms"]["max"] < 10_000
