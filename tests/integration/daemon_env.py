"""A whole van for daemon-level tests: a replayed street, a real watchlist applied through the signed bundle
path, an officer, an authorised deployment, the config for a real TLS broker and the console, and the
daemon itself (in this process as `Appliance`, or as an `appliance run` child process).

    street = make_street(tmp, lfw_dir, crowd_dir, ["Abdullah", "*Alan_Ball", ...])   # * = on the watchlist
    van = provision_van(tmp, tls_broker, pipeline, lfw_dir, street, cooldown_s=2)
    d = daemon_process(van); d.wait_line(ALERT_LINE, 60)                             # or: Appliance(van.config())

The people on the watchlist are enrolled from their first LFW photo and walk past in another one, so the
scores are real cross-photo scores. Helpers reused from accountability_helpers (device keys, control-room
key) and outbox_helpers (child processes with their output lines).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import cv2
import httpx
from accountability_helpers import provision_device
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from mosquitto_fixtures import free_port
from outbox_helpers import Proc

from appliance.config import load_config
from appliance.daemon.assembly import open_store
from appliance.devtools.street_clip import Walker, plan_walkers, render, write_video
from appliance.officers.store import OfficerStore
from appliance.storage import KeyFileProvider
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.enrol import enrol_subjects
from appliance.watchlist.timeutil import iso, utcnow

DEVICE = "van-01"  # TlsBroker has a client certificate for it
OFFICER, PIN = "PC1234", "246813"
FPS = 10.0
SIZE = (960, 540)
# The daemon's log line for an alert committed to the outbox (appliance/daemon/service.py).
ALERT_LINE = r"alert ([0-9a-f-]{36}) raised"


@dataclass
class Street:
    clip: Path
    walkers: list[Walker]
    names: list[str]  # walker i is names[i]
    watched: list[str]  # the names on the watchlist, in walking order
    n_frames: int
    fps: float

    def first_frame(self, name: str) -> int:
        """The clip frame in which `name` first appears (fully on screen: they enter at 12 % of the width)."""
        return self.walkers[self.names.index(name)].start


def make_street(root: Path, lfw_dir: Path, crowd_dir: Path, people: list[str], *, fps: float = FPS,
                seconds_each: float = 2.5, overlap: float = 0.5) -> Street:
    """An mp4 street: `people` walk past a group photo in this order; a leading '*' puts one on the watchlist
    (enrolled from photo 0, walking past in photo 1). Everyone else walks past in photo 0."""
    names = [p.lstrip("*") for p in people]
    watched = [p[1:] for p in people if p.startswith("*")]
    photos = [sorted((lfw_dir / n).glob("*.jpg"))[1 if n in watched else 0] for n in names]
    walkers = plan_walkers(photos, fps=fps, seconds_each=seconds_each, overlap=overlap)
    frames = render(cv2.imread(str(crowd_dir / "13.jpg")), walkers, SIZE)
    root.mkdir(parents=True, exist_ok=True)
    clip = write_video(frames, root / "street.mp4", fps)
    return Street(clip, walkers, names, watched, len(frames), fps)


@dataclass
class Van:
    root: Path
    data: Path
    config_path: Path
    console_url: str
    subjects: dict[str, str] = field(default_factory=dict)  # LFW name -> subject id
    proc: Proc | None = None

    def config(self):
        return load_config(self.config_path)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        r = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, input=stdin,
                           timeout=120)
        assert r.returncode == 0, f"appliance {' '.join(args)}: {r.stderr[-2000:]}"
        return r.stdout

    def start_deployment(self) -> None:
        self.cli("deployment", "--config", str(self.config_path), "start", "--officer", OFFICER, "--purpose",
                 "Integration test on replayed footage", "--location", "Test street (replay)", "--dpia",
                 "TEST-DPIA-1", "--hours", "2")

    def end_deployment(self) -> None:
        self.cli("deployment", "--config", str(self.config_path), "end", "--officer", OFFICER)


def provision_van(tmp_path: Path, broker, pipeline, lfw_dir: Path, street: Street, *, cooldown_s: float = 120.0,
                  loop: bool = False, distractors: int = 10) -> Van:
    """Keys, config, the watchlist (the street's watched people plus LFW distractors not in the street), and an
    officer. No deployment yet: call `van.start_deployment()` (matching runs only inside one)."""
    _, cfg_path, sk = provision_device(tmp_path, n_subjects=0)
    data = tmp_path / "data"
    port = free_port()
    mqtt = broker.mqtt_config(DEVICE)
    cfg_path.write_text(
        cfg_path.read_text()
        + f'[capture]\nsource = "{street.clip}"\nloop = {str(loop).lower()}\npace = true\nfps = {street.fps}\n'
        f"width = {SIZE[0]}\nheight = {SIZE[1]}\n"
        + "[mqtt]\n" + "".join(f'{k} = "{v}"\n' for k, v in mqtt.items())
        + f'[console]\nbind = "127.0.0.1"\nport = {port}\n'
        + f"[alerts]\ncooldown_s = {cooldown_s}\n")
    config = load_config(cfg_path)

    # The watchlist through the real path: enrol, sign, encrypt to the device, open, apply.
    expires = iso(utcnow() + timedelta(days=30))
    others = [n for n in sorted(p.name for p in lfw_dir.iterdir()) if n not in street.names][:distractors]
    subjects, ids = [], {}
    for i, name in enumerate(street.watched + others):
        sid = f"W-{i:03d}"
        ids[name] = sid
        photo = sorted((lfw_dir / name).glob("*.jpg"))[0]
        subjects.append({"meta": {"id": sid, "display_name": name.replace("_", " "), "category": "wanted",
                                  "legal_basis": "test warrant", "image_source": "LFW (news photo)",
                                  "notes": "Test data: not a real person of interest", "expires_at": expires},
                         "photos": [f"{name}/{photo.name}"]})
    entries, refusals = enrol_subjects(subjects, lfw_dir, pipeline, now=utcnow())
    assert not [r for r in refusals if r.subject_id in {ids[n] for n in street.watched}], refusals
    dx = X25519PrivateKey.generate()
    built = build_bundle(entries, tmp_path / "wl.lfrwl", watchlist_id="test-watchlist", model_id=pipeline.model_id,
                         signing_key=sk, recipients=[(DEVICE, dx.public_key())], version=1)
    store = open_store(config)
    try:
        store.apply(open_bundle(built.path, sk.public_key(), DEVICE, dx), model_id=pipeline.model_id)
    finally:
        store.close()
    officers = OfficerStore.open(data, KeyFileProvider(data / "keys"))
    try:
        officers.add(OFFICER, PIN, display_name="PC 1234 Patel")
    finally:
        officers.close()
    return Van(tmp_path, data, cfg_path, f"http://127.0.0.1:{port}", ids)


def daemon_process(van: Van, timeout: float = 120) -> Proc:
    """`appliance run` as a child process, once it says it is running."""
    p = Proc([sys.executable, "-m", "appliance", "run", "--config", str(van.config_path)], "daemon")
    van.proc = p
    p.wait_line(r"appliance \S+ running", timeout)
    return p


def alert_ids(proc: Proc) -> list[str]:
    """Alert event ids in the order the daemon logged them (each logged after its commit)."""
    rx = re.compile(ALERT_LINE)
    return [m.group(1) for line in list(proc.lines) if (m := rx.search(line))]


def wait_for(pred, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Console:
    """The officer's console over HTTP, as the page uses it: login form, CSRF token, decisions."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, headers={"Origin": base}, timeout=10)
        self.csrf = ""

    def login(self) -> Console:
        r = self.http.post("/login", data={"officer_id": OFFICER, "pin": PIN})
        assert r.status_code in (200, 303), r.text[:300]
        page = self.http.get("/").text
        m = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert m, page[:300]
        self.csrf = m.group(1)
        return self

    def status(self) -> dict:
        return self.http.get("/api/status").json()

    def decide(self, alert_id: str, decision: str, note: str | None = None) -> dict:
        r = self.http.post(f"/api/alerts/{alert_id}/decision", json={"decision": decision, "note": note},
                           headers={"X-CSRF-Token": self.csrf})
        assert r.status_code == 201, r.text[:300]
        return r.json()

    def close(self) -> None:
        self.http.close()
