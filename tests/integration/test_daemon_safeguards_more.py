"""More safeguards of docs/safeguards.md re-proved on the running daemon (`Appliance`: real models, a real
SQLCipher watchlist, events and officers database, the frame loop over a looping folder of LFW faces, the
console's real HTTP API on its own port), not on the component that implements them:

- a deployment started from the console without a DPIA reference (or a blank one) is refused with the reason
  and matching stays off; with one, the record, its audit entry and the outbox event carry it;
- with `deployment.two_officer_confirmation`, one officer's confirmation leaves the alert awaiting a second
  officer, the same officer twice still counts once, a second officer's confirmation makes it confirmed;
- the console's status gives the expected false-alert rate from the manifest's calibration for the running
  list size, and none once the threshold is not the calibrated one; a threshold below the one calibrated
  across groups is named on the banner and audited (`threshold.unequal`), and the status gives the group figures;
- after the daemon has written its audit chain (deployment, alert, decisions, end) and stopped, the chain
  holds what AI Act Art. 12(3) asks, `appliance audit verify` passes, `export` + `verify-export` pass with the
  public key alone, and altering one row makes `verify` name that entry;
- `appliance report` on the stopped daemon's data dir gives the figures the daemon recorded, with no subject
  id, name or image.

One daemon serves the whole module (the last test stops it). Its watchlist holds LFW faces applied through
the signed bundle path; its camera shows those people in other photos, so the alerts decided on are ones the
daemon raised itself.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from types import SimpleNamespace

import cv2
import httpx
import pytest
from accountability_helpers import open_events, provision_device
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from mosquitto_fixtures import free_port
from test_audit_cli import tamper

from appliance.audit.chain import iter_entries
from appliance.cli.main import main
from appliance.config import load_config
from appliance.daemon.assembly import open_store
from appliance.daemon.service import Appliance
from appliance.decisions.confirmation import outcome
from appliance.officers.store import OfficerStore
from appliance.storage import KeyFileProvider
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle

OFFICERS = {"PC1234": "246813", "PS5678": "135792"}
DPIA = "DPIA-2026-014"


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def van(tmp_path_factory, lfw_watchlist, pipeline):
    tmp = tmp_path_factory.mktemp("van")
    _, cfg, sk = provision_device(tmp, n_subjects=0, deployment={"two_officer_confirmation": True})
    data = tmp / "data"
    # The watchlist through the real path (enrolled LFW faces, signed, encrypted to the device, applied); the
    # camera shows each subject in another photo of them, a few frames each, looping.
    entries, probes = lfw_watchlist
    dx = X25519PrivateKey.generate()
    built = build_bundle(entries, tmp / "wl.lfrwl", watchlist_id="test-watchlist", model_id=pipeline.model_id,
                         signing_key=sk, recipients=[("van-01", dx.public_key())], version=1)
    store = open_store(load_config(cfg))
    try:
        store.apply(open_bundle(built.path, sk.public_key(), "van-01", dx), model_id=pipeline.model_id)
    finally:
        store.close()
    officers = OfficerStore.open(data, KeyFileProvider(data / "keys"))
    try:
        for officer, pin in OFFICERS.items():
            officers.add(officer, pin, display_name=officer)
    finally:
        officers.close()
    camera = tmp / "camera"
    camera.mkdir()
    for i, image in enumerate(probes.values()):
        for k in range(6):
            cv2.imwrite(str(camera / f"{i:02d}-{k}.jpg"), image)
    port = free_port()
    base = (cfg.read_text() + f'[capture]\nsource = "{camera}"\nloop = true\nfps = 5.0\n'
            f'[console]\nbind = "127.0.0.1"\nport = {port}\n')
    cfg.write_text(base)
    app = Appliance(load_config(cfg), cfg, with_mqtt=False)
    app.start()
    url = f"http://127.0.0.1:{port}"
    v = SimpleNamespace(app=app, cfg=cfg, base=base, data=data, url=url, consoles=[], n_subjects=len(entries),
                        names=[e.meta["display_name"] for e in entries])
    _wait(lambda: _up(url), 30, "the daemon's console")
    try:
        yield v
    finally:
        for c in v.consoles:
            c.close()
        app.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Officer:
    """One officer's session on the daemon's console, as the page uses it (login form, CSRF token)."""

    def __init__(self, van, officer: str):
        self.http = httpx.Client(base_url=van.url, headers={"Origin": van.url}, timeout=10)
        van.consoles.append(self.http)
        r = self.http.post("/login", data={"officer_id": officer, "pin": OFFICERS[officer]})
        assert r.status_code in (200, 303), r.text[:300]
        m = re.search(r'name="csrf-token" content="([^"]+)"', self.http.get("/").text)
        assert m, "no CSRF token on the page: not logged in"
        self.csrf = m.group(1)

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    def status(self) -> dict:
        return self.http.get("/api/status").json()["status"]


def _outbox(app, topic: str) -> list[dict]:
    return [json.loads(r[0]) for r in app.events.db.conn.execute(
        "SELECT payload FROM outbox WHERE topic = ? ORDER BY id", (topic,))]


def _kinds(app) -> list[str]:
    return [e.kind for e in iter_entries(app.events.db)]


def _start(officer: Officer, dpia) -> httpx.Response:
    body = {"purpose": "Daemon-level DPIA test", "location": "Replay (LFW folder)", "hours": 2}
    if dpia is not None:
        body["dpia"] = dpia
    return officer.post("/api/deployment/start", body)


def _deployed(van) -> str:
    """The active deployment's id, started through the console with a DPIA reference if none is active."""
    if van.app.safeguards.deployments.active_id() is None:
        assert _start(Officer(van, "PC1234"), DPIA).status_code == 201
    return van.app.safeguards.deployments.active_id()


def _alert(van) -> str:
    """A real alert the running daemon raised inside the active deployment, not decided yet: its event id."""
    dep = _deployed(van)

    def undecided():
        return next((a["event_id"] for a in van.app.events.alerts(limit=50, deployment_id=dep)
                     if a["latest_decision"] is None), None)

    return _wait(undecided, 90, "the daemon to raise an alert on a watchlist subject")


def test_a_deployment_without_a_dpia_reference_is_refused_and_matching_stays_off(van):
    app, pc = van.app, Officer(van, "PC1234")
    _wait(lambda: app.counters.snapshot().get("detections", 0) > 0, 60, "the camera's faces to be detected")
    for dpia, reason in ((None, "dpia"), ("", "dpia"), ("   ", "dpia")):
        r = _start(pc, dpia)
        assert r.status_code == 400, (dpia, r.status_code, r.text[:200])
        assert reason in r.json()["error"].lower(), r.json()
        assert not app.matching_enabled() and app.safeguards.deployments.active_id() is None
        assert pc.status()["deployment"] is None and pc.status()["matching"] is False
    assert "deployment.started" not in _kinds(app) and _outbox(app, "deployments") == []
    time.sleep(1.0)
    assert app.counters.snapshot().get("looks_embedded", 0) == 0, "faces embedded with no deployment"

    r = _start(pc, f"  {DPIA}  ")
    assert r.status_code == 201, r.text[:300]
    record = r.json()["deployment"]
    assert record["dpia_ref"] == DPIA and record["authorised_by"] == "PC1234"
    assert app.matching_enabled() and pc.status()["deployment"]["id"] == record["id"]
    started = [e for e in iter_entries(app.events.db) if e.kind == "deployment.started"]
    assert len(started) == 1 and started[0].actor == "PC1234"
    assert DPIA in json.dumps(started[0].data)
    [queued] = _outbox(app, "deployments")
    assert queued["event"] == "started" and queued["deployment"]["dpia_ref"] == DPIA
    assert app.safeguards.deployments.get(record["id"])["dpia_ref"] == DPIA


def test_two_officers_must_confirm_and_the_same_one_twice_counts_once(van):
    app = van.app
    alert_id = _alert(van)
    first, second = Officer(van, "PC1234"), Officer(van, "PS5678")
    path = f"/api/alerts/{alert_id}/decision"

    def decide(officer: Officer) -> dict:
        r = officer.post(path, {"decision": "confirm", "note": None})
        assert r.status_code == 201, r.text[:300]
        return r.json()["outcome"]

    def forwarded() -> list[dict]:
        return [p for p in _outbox(app, "decisions") if p["alert_id"] == alert_id]

    confirmed_before = app.events.counters()["confirmed"]
    o = decide(first)
    assert o["state"] == "awaiting_second" and o["confirmed_by"] == ["PC1234"] and o["two_officer"] is True
    # the counters (console strip, transparency report) count the outcome, not the latest decision
    assert app.events.counters()["confirmed"] == confirmed_before
    assert second.http.get(f"/api/alerts/{alert_id}").json()["outcome"]["state"] == "awaiting_second"
    # What reaches the control room is each officer's own decision; on it, the alert is not confirmed yet.
    assert [(p["officer_id"], p["decision"]) for p in forwarded()] == [("PC1234", "confirm")]
    assert not outcome(forwarded(), two_officer=True).forward_as_confirmed

    o = decide(first)  # the same officer again: still one officer
    assert o["state"] == "awaiting_second" and o["confirmed_by"] == ["PC1234"]
    assert not outcome(forwarded(), two_officer=True).forward_as_confirmed

    o = decide(second)
    assert o["state"] == "confirmed" and sorted(o["confirmed_by"]) == ["PC1234", "PS5678"]
    assert app.events.counters()["confirmed"] == confirmed_before + 1
    assert [(p["officer_id"], p["decision"]) for p in forwarded()] == [
        ("PC1234", "confirm"), ("PC1234", "confirm"), ("PS5678", "confirm")]
    assert outcome(forwarded(), two_officer=True).forward_as_confirmed
    decisions = [e for e in iter_entries(app.events.db) if e.kind == "decision"]
    assert [e.actor for e in decisions][-3:] == ["PC1234", "PC1234", "PS5678"]


def test_the_status_gives_the_expected_rate_for_the_list_size_only_at_the_calibrated_threshold(van):
    app = van.app
    _deployed(van)
    cal = app.pipeline.embedder_spec.calibration
    gallery = app.pipeline.embedder_spec.raw["calibration"]["evidence"]["gallery_size"]
    n = app.matcher.gallery.n_subjects
    assert n == van.n_subjects and app.threshold == cal.threshold
    expected = float(f"{1.0 - (1.0 - cal.target_fpir) ** (n / float(gallery)):.4g}")
    pc = Officer(van, "PC1234")
    status = pc.status()
    assert status["watchlist_subjects"] == n and status["threshold"] == cal.threshold
    assert status["expected_false_alert_rate"] == expected and expected > 0
    assert status["expected_false_alert_rate_upper"] >= expected
    assert "rejected_share" in status  # beside it: the measured share (None until an alert is rejected)

    # A stricter threshold (a reload, as SIGHUP asks for): the calibration says nothing exact there.
    raised = round(cal.threshold + 0.05, 4)
    van.cfg.write_text(van.base + f"[matcher]\nthreshold = {raised}\n")
    app.request_reload()
    _wait(lambda: pc.status()["threshold"] == raised, 30, "the reload to apply the raised threshold")
    status = pc.status()
    assert status["expected_false_alert_rate"] is None and status["expected_false_alert_rate_upper"] is None
    assert not [w for w in status["warnings"] if "across groups" in w]  # stricter: every group still meets it

    # Below the calibrated threshold (above the floor): the group evaluation no longer covers it, and the
    # daemon says so on the banner and in the audit chain.
    lowered = round((cal.threshold + cal.floor) / 2, 4)
    van.cfg.write_text(van.base + f"[matcher]\nthreshold = {lowered}\n")
    app.request_reload()
    _wait(lambda: pc.status()["threshold"] == lowered, 30, "the reload to apply the lowered threshold")
    [warning] = [w for w in pc.status()["warnings"] if "across groups" in w]
    assert f"{lowered:.4f}" in warning and f"{cal.threshold:.4f}" in warning
    unequal = [e for e in iter_entries(app.events.db) if e.kind == "threshold.unequal"]
    assert [e.data["threshold"] for e in unequal] == [lowered]

    van.cfg.write_text(van.base)
    app.request_reload()
    _wait(lambda: pc.status()["threshold"] == cal.threshold, 30, "the reload back to the calibrated threshold")
    status = pc.status()
    assert status["expected_false_alert_rate"] == expected and status["warnings"] == []
    # The evaluation across groups behind the threshold, as the manifest recorded it.
    groups = status["calibration_groups"]
    evidence = app.pipeline.embedder_spec.raw["calibration"]["evidence"]
    assert groups["threshold"] == cal.threshold and groups["binding_group"] == evidence["binding_group"]
    assert set(groups["groups"]) == set(evidence["groups"]) and len(groups["groups"]) >= 2
    for name, g in groups["groups"].items():
        assert g["false_alarms_at_threshold"] == evidence["groups"][name]["false_alarms_at_threshold"]


def test_the_daemons_audit_chain_verifies_exports_and_names_an_altered_entry(van, tmp_path, capsys):
    app = van.app
    alert_id = _alert(van)
    dep = app.safeguards.deployments.active_id()
    pc = Officer(van, "PC1234")
    assert pc.post(f"/api/alerts/{alert_id}/decision", {"decision": "reject", "note": "not him"}).status_code == 201
    assert pc.post("/api/deployment/end", {}).status_code == 200
    app.stop()  # the module's daemon: this test is the last one
    cfg, data = str(van.cfg), van.data
    _assert_the_report_gives_what_the_daemon_recorded(van, dep, tmp_path, capsys)

    assert main(["audit", "verify", "--config", cfg]) == 0
    n = int(re.search(r"OK: (\d+) entries", capsys.readouterr().out).group(1))
    store, _audit = open_events(data)
    try:
        store_entries = list(iter_entries(store.db))
        raised = {a["event_id"]: a for a in store.alerts(limit=10_000, deployment_id=dep)}
    finally:
        store.close()
    kinds = [e.kind for e in store_entries]
    for kind in ("deployment.started", "alert", "decision", "deployment.ended"):
        assert kind in kinds, (kind, kinds)
    assert len(store_entries) == n
    _assert_the_chain_holds_what_art_12_asks(store_entries, dep, raised)

    out = tmp_path / "export.jsonl"
    assert main(["audit", "export", "--config", cfg, "--from", "2000-01-01", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == n + 1 and json.loads(lines[-1])["type"] == "trailer"
    pub = data / "keys" / "device.ed25519.pub"
    capsys.readouterr()
    assert main(["audit", "verify-export", str(out), "--public-key", str(pub), "--device", "van-01"]) == 0
    assert f"export OK: {n} entries" in capsys.readouterr().out

    # The officer's rejection rewritten as a confirmation, in the decrypted database.
    seq = next(e.seq for e in store_entries if e.kind == "decision" and e.data.get("decision") == "reject")
    tamper(data, "UPDATE audit SET data = replace(data, '\"reject\"', '\"confirm\"') WHERE seq = ?", seq)
    assert main(["audit", "verify", "--config", cfg]) == 1
    said = capsys.readouterr().out
    assert f"BROKEN at entry {seq}" in said and "altered" in said


def _assert_the_report_gives_what_the_daemon_recorded(van, dep: str, tmp_path, capsys) -> None:
    """`appliance report` on the stopped daemon's data dir: its figures are the ones the daemon recorded (the
    alerts it raised, each counted by its two-officer outcome, the list, threshold and expected rate of the
    deployment's start event), and neither rendering holds a subject id, a name or an image."""
    store, _audit = open_events(van.data)
    try:
        alerts = store.alerts(limit=10_000, deployment_id=dep)
        states = Counter(outcome(store.decisions_for(a["event_id"]), two_officer=True).state for a in alerts)
        [started] = [p["deployment"] for p in _outbox(SimpleNamespace(events=store), "deployments")
                     if p["event"] == "started" and p["deployment"]["id"] == dep]
    finally:
        store.close()
    assert alerts and states["confirmed"] >= 1 and states["rejected"] >= 1, states  # the module's decisions
    cal = van.app.pipeline.embedder_spec.calibration
    gallery = van.app.pipeline.embedder_spec.raw["calibration"]["evidence"]["gallery_size"]
    rate = float(f"{1.0 - (1.0 - cal.target_fpir) ** (van.n_subjects / float(gallery)):.4g}")
    out = {ext: tmp_path / f"report.{ext}" for ext in ("json", "md", "html")}
    for path in out.values():
        assert main(["report", "--config", str(van.cfg), "--deployment", dep, "--out", str(path)]) == 0
    capsys.readouterr()
    r = json.loads(out["json"].read_text())
    assert r["alerts"] == len(alerts) and r["confirmed"] == states["confirmed"]
    assert r["rejected"] == states["rejected"] and r["unsure"] == states["unsure"] + states["disputed"]
    assert r["pending"] == states["pending"] + states["awaiting_second"]
    assert r["deployment"]["watchlist"] == started["watchlist"] and started["watchlist"]["subjects"] == van.n_subjects
    assert r["deployment"]["threshold"] == started["threshold"] == cal.threshold
    assert r["expected_false_alert_rate"] == started["expected_false_alert_rate"] == rate
    assert r["deployment"]["end_reason"] == "officer" and r["audit"]["ok"] is True
    subject_ids = {a["subject_id"] for a in alerts}
    for ext in ("md", "html"):
        text = out[ext].read_text()
        assert f"The system raised {len(alerts)} alert" in text and f"{states['confirmed']} confirmed" in text
        assert f"{started['threshold']:.4f}" in text and started["watchlist"]["sha256"][:16] in text
        assert f"about 1 in {1 / rate:,.0f}" in text
        leaks = [x for x in [*subject_ids, *van.names, "<img", "data:image", "/9j/"] if x in text]
        assert not leaks, (ext, leaks)


def _assert_the_chain_holds_what_art_12_asks(entries: list, dep: str, raised: dict[str, dict]) -> None:
    """AI Act Art. 12(3)(a)-(d) in the chain the daemon wrote: the period of use, the reference database, the
    input that matched (subject, score, list version; never the crop) and who verified it."""
    started = next(e for e in entries if e.kind == "deployment.started" and e.data["deployment"]["id"] == dep)
    ended = next(e for e in entries if e.kind == "deployment.ended" and e.data["deployment"]["id"] == dep)
    record = started.data["deployment"]
    assert record["starts_at"] and ended.data["deployment"]["ended_at"] and ended.actor == "PC1234"
    alerts = [e for e in entries if e.kind == "alert" and e.data["deployment_id"] == dep]
    assert {e.data["event_id"] for e in alerts} == set(raised)
    for e in alerts:
        a = raised[e.data["event_id"]]
        assert (e.data["subject_id"], e.data["score"]) == (a["subject_id"], a["score"])
        assert e.data["watchlist_sha256"] == record["watchlist"]["sha256"] and "crop_jpeg_b64" not in e.data
    decisions = [e for e in entries if e.kind == "decision" and e.data["alert_id"] in raised]
    assert decisions and {e.actor for e in decisions} <= set(OFFICERS)
