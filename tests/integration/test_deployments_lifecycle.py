"""Deployments on the real encrypted events database: start, the matching gate, every way of ending,
the outbox events, the audit entries, restart, and changes made by another process (the CLI)."""

from __future__ import annotations

import json

import pytest
from accountability_helpers import Clock, manager, open_events, request

from appliance.deployments.manager import get_deployment
from appliance.deployments.record import DeploymentError


@pytest.fixture
def env(tmp_path):
    store, audit = open_events(tmp_path)
    yield tmp_path, store, audit
    store.close()


def deployment_events(store):
    return [json.loads(r[0]) for r in store.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = 'deployments' ORDER BY id").fetchall()]


def test_start_gate_and_end_by_officer(env):
    _, store, audit = env
    clock = Clock()
    counts = {"faces_seen": 10, "faces_skipped_quality": 3}
    m = manager(store, audit, clock, counters=lambda: dict(counts))
    seen = []
    m.on_change(lambda ev, r: seen.append((ev, r["id"])))
    assert not m.is_active() and m.active_id() is None
    r = m.start(request(clock), source="console")
    assert m.is_active() and m.active_id() == r["id"]
    with pytest.raises(DeploymentError, match="is active"):
        m.start(request(clock), source="console")
    counts.update(faces_seen=25, faces_skipped_quality=4, alerts=1)
    clock.advance(minutes=30)
    e = m.end("officer", by="PC-9")
    assert not m.is_active()
    assert e["end_reason"] == "officer" and e["ended_by"] == "PC-9"
    assert seen == [("started", r["id"]), ("ended", r["id"])]
    evs = deployment_events(store)
    assert [x["event"] for x in evs] == ["started", "ended"]
    assert evs[1]["deployment"]["counts"] == {"faces_seen": 15, "faces_skipped_quality": 1, "alerts": 1}
    stored = get_deployment(store, r["id"])
    assert stored["ended_at"] and stored["counts"]["faces_seen"] == 15
    kinds = [(e.kind, e.actor) for e in _entries(store)]
    assert kinds == [("deployment.started", "PC-1234"), ("deployment.ended", "PC-9")]
    assert audit.verify().ok


def _entries(store):
    from appliance.audit.chain import iter_entries

    return list(iter_entries(store.db))


def test_gate_closes_at_the_planned_end_before_check(env):
    _, store, audit = env
    clock = Clock()
    m = manager(store, audit, clock)
    m.start(request(clock, hours=1), source="command")
    clock.advance(minutes=59)
    assert m.is_active()
    clock.advance(minutes=2)
    assert not m.is_active()  # no I/O needed to stop matching
    m.check()
    dep = deployment_events(store)[-1]["deployment"]
    assert dep["end_reason"] == "planned_end" and dep["ended_by"] == "system"
    assert dep["ended_at"] == dep["planned_end"]


def test_restart_adopts_the_open_deployment(tmp_path):
    store, audit = open_events(tmp_path)
    clock = Clock()
    r = manager(store, audit, clock).start(request(clock), source="console")
    store.close()
    store, audit = open_events(tmp_path)
    m = manager(store, audit, clock)
    assert m.load()["id"] == r["id"] and m.is_active()
    store.close()


def test_another_process_ending_it_is_picked_up(tmp_path):
    daemon_store, daemon_audit = open_events(tmp_path)
    clock = Clock()
    daemon = manager(daemon_store, daemon_audit, clock)
    ended = []
    daemon.on_change(lambda ev, r: ended.append(ev))
    daemon.start(request(clock), source="console")
    cli_store, cli_audit = open_events(tmp_path)  # a second connection, like `appliance deployment end`
    cli = manager(cli_store, cli_audit, clock)
    cli.load()
    cli.end("officer", by="PC-7")
    cli_store.close()
    assert daemon.is_active()
    daemon.check()
    assert not daemon.is_active() and ended == ["started", "ended"]
    assert daemon_audit.verify().ok
    daemon_store.close()


def test_wipe_on_end_per_configuration(env):
    _, store, audit = env
    clock = Clock()
    wiped = []
    m = manager(store, audit, clock, wipe=lambda: wiped.append(1), wipe_watchlist_on_end=True)
    m.start(request(clock), source="console")
    m.end("officer", by="PC-1")
    assert wiped == [1]
    assert [e.kind for e in _entries(store)][-1] == "watchlist.erased"
    m2 = manager(store, audit, clock, wipe=lambda: wiped.append(2))  # default: off
    m2.start(request(clock), source="console")
    m2.end("officer", by="PC-1")
    assert wiped == [1]


def test_rebaseline_drops_the_flush_at_the_start(env):
    _, store, audit = env
    clock = Clock()
    counts = {"faces_seen": 5}
    m = manager(store, audit, clock, counters=lambda: dict(counts))
    m.start(request(clock), source="console")
    counts["faces_not_embedded"] = 3  # tracks in view before the start, flushed by the reset
    m.rebaseline()
    counts.update(faces_seen=9, faces_not_embedded=4)
    assert m.update_counts() == {"faces_seen": 4, "faces_not_embedded": 1}
