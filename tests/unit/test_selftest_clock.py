"""The clock check's logic: the measured offset (median of the time servers) against the local daemon's word.

The NTP exchange and the daemons are replaced here; tests/integration/test_provision_selftest.py runs the same
check against real chronyd time servers, one of them two minutes ahead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.device import selftest
from appliance.device.selftest import FAIL, PASS, check_clock, run_check, split_server


def _config(tmp_path: Path, servers: list[str]):
    return load_config(None, {"device.data_dir": str(tmp_path), "device.time_servers": servers})


def _situation(monkeypatch, *, synced: bool, offsets: list[float | None]):
    def measure(servers, timeout_s=2.0):
        return [{"server": s, "offset_s": o, "delay_s": 0.001, "stratum": 2} if o is not None
                else {"server": s, "error": "timed out"} for s, o in zip(servers, offsets, strict=True)]

    how = "chrony synchronised to 192.0.2.10 (offset 0.4 ms)" if synced else "the kernel clock is not synchronised"
    monkeypatch.setattr(selftest, "measure_time_servers", measure)
    monkeypatch.setattr(selftest, "local_sync_status", lambda: (synced, how, {"source": "test"}))


@pytest.mark.parametrize("server, expected", [
    ("ntp1.force.example", ("ntp1.force.example", 123)),
    ("10.0.0.5:1123", ("10.0.0.5", 1123)),
    ("[2001:db8::1]:123", ("2001:db8::1", 123)),
])
def test_time_server_addresses(server, expected):
    assert split_server(server) == expected


def test_offsets_within_a_second_pass_and_say_whether_anything_keeps_them_there(tmp_path, monkeypatch):
    cfg = _config(tmp_path, ["a", "b"])
    _situation(monkeypatch, synced=True, offsets=[0.002, 0.004])
    text, details = check_clock(cfg)
    assert "ms of" in text and "chrony synchronised" in text and details["synchronised"] is True
    _situation(monkeypatch, synced=False, offsets=[0.002, 0.004])
    text, _ = check_clock(cfg)
    assert "no NTP daemon disciplines it here, so it will drift" in text


@pytest.mark.parametrize("offset, word", [(120.0, "slow"), (-5.5, "fast")])
def test_a_clock_off_by_more_than_a_second_fails_with_direction(tmp_path, monkeypatch, offset, word):
    _situation(monkeypatch, synced=True, offsets=[offset])  # a daemon's word does not outweigh a measurement
    r = run_check("clock", check_clock, _config(tmp_path, ["ntp1"]))
    assert r.status == FAIL and f"{abs(offset):.3f} s {word} against ntp1" in r.reason


def test_the_median_outvotes_one_wrong_server(tmp_path, monkeypatch):
    _situation(monkeypatch, synced=False, offsets=[0.01, -3600.0, 0.02])
    assert run_check("clock", check_clock, _config(tmp_path, ["a", "b", "c"])).status == PASS
    _situation(monkeypatch, synced=False, offsets=[-3600.0, -3600.0, 0.02])
    assert run_check("clock", check_clock, _config(tmp_path, ["a", "b", "c"])).status == FAIL


def test_silent_servers_fall_back_to_the_daemon(tmp_path, monkeypatch):
    cfg = _config(tmp_path, ["a", "b"])
    _situation(monkeypatch, synced=False, offsets=[None, None])
    r = run_check("clock", check_clock, cfg)
    assert r.status == FAIL and r.reason.startswith("no time server answered (a: timed out; b: timed out)")
    _situation(monkeypatch, synced=True, offsets=[None, None])
    r = run_check("clock", check_clock, cfg)
    assert r.status == PASS and "no configured time server answered" in r.reason


def test_with_no_servers_configured_only_the_daemon_counts(tmp_path, monkeypatch):
    _situation(monkeypatch, synced=False, offsets=[])
    r = run_check("clock", check_clock, _config(tmp_path, []))
    assert r.status == FAIL and "[device] time_servers" in r.reason and "install chrony" in r.reason


CHRONY_LOCAL = """Reference ID    : 7F7F0101 ()
Stratum         : 8
System time     : 0.000000001 seconds fast of NTP time
Leap status     : Normal
"""
CHRONY_SYNCED = """Reference ID    : C0000210 (192.0.2.16)
Stratum         : 3
System time     : 0.000412000 seconds slow of NTP time
Leap status     : Normal
"""


def test_chrony_serving_its_own_clock_is_not_synchronised(monkeypatch):
    monkeypatch.setattr(selftest, "kernel_clock_synchronised", lambda: False)
    for output, synced in ((CHRONY_LOCAL, False), (CHRONY_SYNCED, True)):
        monkeypatch.setattr(selftest, "_run", lambda cmd, timeout=5.0, out=output:
                            out if cmd[0] == "chronyc" else None)
        ok, how, _ = selftest.local_sync_status()
        assert ok is synced, how
    assert "192.0.2.16 (offset 0.4 ms)" in how


def test_bad_time_server_entries_are_refused_by_the_config(tmp_path):
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match="time_servers"):
        _config(tmp_path, ["ntp1; rm -rf /"])
