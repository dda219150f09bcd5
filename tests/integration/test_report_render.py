"""The transparency report of a real deployment on the encrypted events database: every required figure,
no biometric data, no names or subject ids; rendered by a real browser (a screenshot a person can look at)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from accountability_helpers import Clock, manager, open_events, request

from appliance.cli.main import main
from appliance.events.models import Alert, Decision
from appliance.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
# UPDATE_SCREENSHOTS=1 also writes the screenshot into docs/img/ (for docs/safeguards.md).
DOCS_IMG = PROJECT_ROOT / "docs" / "img"
NAMES = ("Person Zero", "Person One")  # what the watchlist would call them: must never appear


@pytest.fixture
def deployment(tmp_path):
    data = tmp_path / "data"
    store, audit = open_events(data)
    clock = Clock()
    counts = {"faces_seen": 0}
    m = manager(store, audit, clock, counters=lambda: dict(counts))
    dep = m.start(request(clock, hours=4), source="console")
    decisions = ["confirm", "reject", "reject", "unsure", "confirm", None]
    for i, d in enumerate(decisions):
        a = Alert(device_id="van-01", subject_id=f"S-{100 + i}", category="wanted", score=0.66, threshold=0.6142,
                  track_id=i, model_id="mobilefacenet-int8", watchlist_id="met-wanted", watchlist_version=7,
                  crop_jpeg=b"\xff\xd8\xff" + bytes(range(256)) * 4, deployment_id=dep["id"])
        store.add_alert(a)
        if d:
            store.add_decision(Decision(device_id="van-01", alert_id=a.event_id, officer_id="PC-1234", decision=d))
    counts.update(faces_seen=1843, faces_skipped_quality=612, faces_not_embedded=41, looks_embedded=2790,
                  alerts=6)
    clock.advance(hours=3, minutes=20)
    m.end("officer", by="PC-1234")
    store.close()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[device]\nid = "van-01"\ndata_dir = "{data}"\n[storage]\nkey_provider = "file"\n')
    return cfg, dep


@pytest.mark.parametrize("ext", ["html", "md"])
def test_report_has_every_figure_and_nothing_biometric(deployment, tmp_path, ext):
    cfg, dep = deployment
    out = tmp_path / f"report.{ext}"
    assert main(["report", "--config", str(cfg), "--deployment", dep["id"], "--out", str(out)]) == 0
    text = out.read_text()
    for needed in (dep["id"], "PC-1234", "Wanted offenders, night-time economy", "High Street, outside the station",
                   "DPIA-2026-041", "1,843", "612", "0.6142", "met-wanted, version 7", "mobilefacenet-int8",
                   "ended by an officer", "3 h 20 min", "about 1 in 10,000", "40.0%", "is intact",
                   "about 0.18 false alerts",
                   "13 of its entries were written during this deployment"):
        assert needed in text, needed
    # confirmed 2, rejected 2, unsure 1, pending 1 of 6 alerts; rejected share = 2 / 5 decided
    assert "2 confirmed, 2 rejected as wrong, 1 where the officer could not tell, and 1 not yet decided" in text
    for forbidden in ("S-10", "crop", "/9j/", "\xff", "data:image", *NAMES):
        assert forbidden not in text, forbidden


def test_unknown_deployment_is_one_line(deployment, tmp_path, capsys):
    cfg, _ = deployment
    assert main(["report", "--config", str(cfg), "--deployment", "D-nope", "--out", str(tmp_path / "r.html")]) == 2
    assert "no deployment D-nope" in capsys.readouterr().err


def test_rendered_in_a_browser(deployment, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (it is in .ci/run's apt list)")
    cfg, dep = deployment
    html = tmp_path / "report.html"
    assert main(["report", "--config", str(cfg), "--deployment", dep["id"], "--out", str(html)]) == 0
    png = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", "--window-size=1000,2200", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 1000
    assert (img < 128).mean() > 0.01  # there is text on it
    if __import__("os").environ.get("UPDATE_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, DOCS_IMG / "transparency-report.png")
