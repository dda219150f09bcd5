"""Nothing is lost by the running daemon (issue 4, fault tests): `appliance run` as a child process on a
looped street where eight watchlist subjects walk past again and again (`alerts.cooldown_s = 2`, so each
pass alerts again), a real TLS Mosquitto, the control-room receiver (`appliance control listen`, SQLCipher
database) and an officer deciding through the console's HTTP API.

- The broker is stopped for 30 s while the daemon keeps raising alerts and the officer keeps deciding.
- The daemon is SIGKILLed right after it logs an alert (committed, perhaps not yet published), restarted,
  SIGKILLed again right after the next one, and restarted.

Each time, every alert and decision in the van's outbox must arrive at the receiver exactly once, in the
van's order, and be printed once; the test prints how many it checked. (A burst of 100 alerts with the
broker killed, the van killed and the link cut is tested at the publisher level by test_outbox_faults.py.)
"""

from __future__ import annotations

import re
import time

import pytest
from daemon_env import ALERT_LINE, Console, alert_ids, daemon_process, make_street, provision_van, wait_for
from outbox_helpers import check_exactly_once_in_order, control_arrivals, receiver, van_outbox

WATCHED = ["Alan_Ball", "Alimzhan_Tokhtakhounov", "Albrecht_Mentz", "Akhmed_Zakayev", "Adrien_Brody",
           "Alex_Penelas", "Abdullah_Gul", "Ahmed_Chalabi"]
# Mostly watchlist subjects, two passers-by among them: about 12 s a loop, 8 alerts a loop.
STREET = ["*" + n for n in WATCHED[:4]] + ["Aaron_Sorkin"] + ["*" + n for n in WATCHED[4:]] + ["Abel_Pacheco"]
OUTAGE_S = 30.0


@pytest.fixture(scope="module")
def street(tmp_path_factory, lfw_dir, crowd_dir):
    return make_street(tmp_path_factory.mktemp("street"), lfw_dir, crowd_dir, STREET, seconds_each=2.0)


@pytest.fixture
def van(tmp_path, tls_broker, pipeline, lfw_dir, street):
    v = provision_van(tmp_path, tls_broker, pipeline, lfw_dir, street, cooldown_s=2.0, loop=True)
    v.start_deployment()
    return v


def delivered(rx, event_ids: list[str]) -> bool:
    """Every one of these events has been printed by the receiver (it prints after its commit)."""
    printed = {line.split()[3] for line in list(rx.lines) if len(line.split()) > 3
               and line.split()[2] in ("alert", "decision")}
    return set(event_ids) <= printed


def check(data, db, keys, rx) -> tuple[int, int, int]:
    """Alerts and decisions: each exactly once, in the van's order, printed once. Deployment events: once each."""
    outbox = van_outbox(data)
    arrivals = control_arrivals(db, keys, "van-01")
    events = [r for r in outbox if r["topic"] in ("alerts", "decisions")]
    n = check_exactly_once_in_order(events, [a for a in arrivals if a["kind"] in ("alert", "decision")], rx.lines)
    deployments = [r["event_id"] for r in outbox if r["topic"] == "deployments"]
    assert sorted(a["event_id"] for a in arrivals if a["kind"] == "deployment") == sorted(deployments)
    return n, sum(r["topic"] == "alerts" for r in events), sum(r["topic"] == "decisions" for r in events)


def test_broker_stopped_30s_while_alerts_happen(van, tls_broker, tmp_path):
    db, keys = tmp_path / "control.db", tmp_path / "control-keys"
    rx = receiver(tls_broker, db, keys, signing_key=van.root / "control-room" / "control-room.ed25519.key")
    d = daemon_process(van)
    console = Console(van.console_url).login()
    decisions: list[str] = []
    try:
        # Link up: alerts flow, the officer decides on the first one.
        wait_for(lambda: len(alert_ids(d)) >= 3, 60, "3 alerts before the outage")
        decisions.append(console.decide(alert_ids(d)[0], "reject", "Not him")["event_id"])
        wait_for(lambda: delivered(rx, alert_ids(d)[:3] + decisions), 20, "the first alerts at the receiver")

        # The broker goes away for 30 s; the daemon keeps raising alerts and the officer keeps deciding.
        tls_broker.stop()
        before = len(alert_ids(d))
        t_stop = time.monotonic()
        wait_for(lambda: console.status()["status"]["broker"] != "up", 20, "the daemon to see the link down")
        decided = set()
        while time.monotonic() - t_stop < OUTAGE_S:
            for i, eid in enumerate(alert_ids(d)[before:]):
                if eid not in decided and len(decided) < 6:
                    decided.add(eid)
                    decisions.append(console.decide(eid, ("confirm", "reject", "unsure")[i % 3],
                                                    "decided while the link was down")["event_id"])
            time.sleep(0.5)
        during = alert_ids(d)[before:]
        backlog = console.status()["status"]["outbox_backlog"]
        assert len(during) >= 10, f"only {len(during)} alerts during the {OUTAGE_S:.0f} s outage"
        assert backlog >= len(during) + len(decided), backlog
        tls_broker.start()

        # Back up: a few more alerts and a decision, then the deployment ends (no more alerts) and all drains.
        n_up = len(alert_ids(d))
        wait_for(lambda: len(alert_ids(d)) >= n_up + 2, 30, "alerts after the restart")
        decisions.append(console.decide(alert_ids(d)[-1], "confirm", "after the outage")["event_id"])
        van.end_deployment()
        d.wait_line(r"deployment \S+ was ended by", 20)
        wait_for(lambda: delivered(rx, alert_ids(d) + decisions), 90, "every alert and decision at the receiver")
        wait_for(lambda: console.status()["status"]["outbox_backlog"] == 0, 30, "the outbox to drain")
    finally:
        console.close()
        rc_d = d.terminate(30)
        rc_rx = rx.terminate()
    assert (rc_d, rc_rx) == (0, 0)
    n, n_alerts, n_decisions = check(van.data, db, keys, rx)
    assert n_alerts == len(alert_ids(d)) and n_decisions == len(decisions)
    print(f"\nchecked {n} events from van-01 ({n_alerts} alerts, {n_decisions} decisions): each arrived exactly "
          f"once, in order; {len(during)} alerts and {len(decided)} decisions were made during the "
          f"{OUTAGE_S:.0f} s broker outage (backlog {backlog} at its end); receiver {rx.lines[-1]}")


def test_daemon_sigkilled_right_after_an_alert(van, tls_broker, tmp_path):
    db, keys = tmp_path / "control.db", tmp_path / "control-keys"
    rx = receiver(tls_broker, db, keys, signing_key=van.root / "control-room" / "control-room.ed25519.key")
    killed: list[str] = []  # the alert each SIGKILL followed
    procs = []
    try:
        for _ in range(2):  # killed twice, each time right after an alert line; matching goes on between
            d = daemon_process(van)
            procs.append(d)
            line = d.wait_line(ALERT_LINE, 60)
            d.kill()
            killed.append(re.search(ALERT_LINE, line).group(1))
            rows = {r["event_id"]: r for r in van_outbox(van.data)}
            assert killed[-1] in rows, "the alert was logged before its commit"
            time.sleep(1.0)  # anything already on its way reaches the receiver
            print(f"\nSIGKILL right after alert {killed[-1]}: committed; PUBACK "
                  f"{'recorded' if rows[killed[-1]]['sent_at'] else 'not recorded'} at the kill; the receiver "
                  f"{'had' if delivered(rx, killed[-1:]) else 'had not'} got it 1 s later")
        # The deployment ends while the daemon is down; restarted, it only drains its outbox.
        van.end_deployment()
        d = daemon_process(van)
        procs.append(d)
        all_alerts = [eid for p in procs for eid in alert_ids(p)]
        assert set(killed) <= set(all_alerts)
        wait_for(lambda: delivered(rx, all_alerts), 60, "every alert at the receiver")
        console = Console(van.console_url).login()
        wait_for(lambda: console.status()["status"]["outbox_backlog"] == 0, 30, "the outbox to drain")
        console.close()
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.terminate(30)
        rc_rx = rx.terminate()
    assert rc_rx == 0
    n, n_alerts, _ = check(van.data, db, keys, rx)
    assert n_alerts == len(all_alerts)
    got = [a["event_id"] for a in control_arrivals(db, keys, "van-01")]
    assert all(got.count(eid) == 1 for eid in killed)
    print(f"checked {n} events from van-01 ({n_alerts} alerts) through 2 SIGKILLs each right after an alert: "
          f"each arrived exactly once, in order; receiver {rx.lines[-1]}")
