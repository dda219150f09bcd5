"""`make demo`: a whole van on this computer, with the real parts.

It makes, under demo-data/ (wiped each run):
- a control room: its signing keys, a TLS broker configured from deploy/mosquitto/ (TLS, client
  certificates, per-device ACL), and a watchlist of public-domain NASA astronaut portraits plus LFW people;
- a van: device keys, a config, a demo officer, and a replayed "street" where people walk past a group photo
  (most of them are not on the watchlist; three are);
then it starts the daemon (`appliance run`), publishes the signed watchlist to it over MQTT, starts a demo
deployment, and waits for the first alert. Open the console address it prints and log in as the demo officer.

    python -m appliance.devtools.demo            # run until Ctrl-C
    python -m appliance.devtools.demo --check    # exit 0 once the first alert is on the console (tests)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.cookiejar import CookieJar
from pathlib import Path

import cv2

from appliance.devtools.street_clip import plan_walkers, render, write_video
from appliance.paths import PROJECT_ROOT, shared_data_dir
from appliance.sync.local_broker import TlsBroker

DEVICE = "van-01"  # a client certificate for it exists in TlsBroker.CLIENTS
OFFICER, PIN = "demo", "246810"
# On the watchlist and in the street (their *other* LFW photo walks past), and only on the watchlist.
WATCHED_IN_STREET = ["Alan_Ball", "Albrecht_Mentz", "Akhmed_Zakayev"]
PASSERS_BY = ["Abdullah", "Adam_Sandler", "Alex_Penelas", "Aaron_Sorkin", "Abdoulaye_Wade", "Adam_Scott",
              "Abel_Pacheco", "Alexander_Rumyantsev", "Andrei_Mikhnevich", "Aicha_El_Ouafi"]
NASA_UNUSABLE = {"carl_walz"}  # reference photo too small (data/README.md)


def sh(*args: str, stdin: str | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, input=stdin)
    if r.returncode != 0:
        raise SystemExit(f"demo: `appliance {' '.join(args)}` failed:\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def first_photo(folder: Path) -> Path:
    return sorted(folder.glob("*.jpg"))[0]


def make_watchlist(root: Path, data: Path) -> tuple[Path, Path]:
    """Subjects CSV and photos folder: NASA portraits and three LFW people (first photo)."""
    photos = root / "photos"
    photos.mkdir(parents=True)
    rows = []
    expires = (datetime.now(timezone.utc) + timedelta(days=7)).date().isoformat()
    for i, folder in enumerate(sorted((data / "nasa").iterdir())):
        if folder.name in NASA_UNUSABLE or not (folder / "portrait.jpg").exists():
            continue
        shutil.copy(folder / "portrait.jpg", photos / f"N-{i:03d}.jpg")
        rows.append((f"N-{i:03d}", folder.name.replace("_", " ").title(), "missing person",
                     "Demo: public-domain NASA portrait", "NASA official portrait"))
    for i, name in enumerate(WATCHED_IN_STREET):
        shutil.copy(first_photo(data / "lfw" / name), photos / f"W-{i:03d}.jpg")
        rows.append((f"W-{i:03d}", name.replace("_", " "), "wanted (demo)", "Demo: LFW research photo",
                     "LFW (news photo)"))
    subjects = root / "subjects.csv"
    with subjects.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "display_name", "category", "legal_basis", "image_source", "image_date", "added_by",
                    "review_due", "expires_at", "notes"])
        for sid, name, cat, basis, source in rows:
            w.writerow([sid, name, cat, basis, source, "2020-01-01", "Demo control room", expires, expires,
                        "Demo data: not a real person of interest"])
    return subjects, photos


def make_street(root: Path, data: Path, fps: float) -> Path:
    people = [first_photo(data / "lfw" / n) for n in PASSERS_BY]
    watched = [sorted((data / "lfw" / n).glob("*.jpg"))[1] for n in WATCHED_IN_STREET]
    for i, photo in enumerate(watched):  # spread the watchlisted people among the passers-by
        people.insert(2 + i * 4, photo)
    frames = render(cv2.imread(str(data / "crowd" / "13.jpg")), plan_walkers(people, fps=fps), (1280, 720))
    return write_video(frames, root / "street.mp4", fps)


def write_config(root: Path, broker: TlsBroker, clip: Path, port: int) -> Path:
    mqtt = broker.mqtt_config(DEVICE)
    text = f"""# Demo van configuration written by appliance.devtools.demo
[device]
id = "{DEVICE}"
data_dir = "{root / 'van'}"

[capture]
source = "{clip}"
loop = true
pace = true
fps = 10

[mqtt]
broker = "{mqtt['broker']}"
ca_file = "{mqtt['ca_file']}"
cert_file = "{mqtt['cert_file']}"
key_file = "{mqtt['key_file']}"

[console]
bind = "127.0.0.1"
port = {port}
"""
    path = root / "appliance.toml"
    path.write_text(text)
    return path


class ConsoleClient:
    """Logs in as the demo officer and reads alerts, as the page does."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def login(self) -> None:
        body = f"officer_id={OFFICER}&pin={PIN}".encode()
        req = urllib.request.Request(self.base + "/login", data=body, method="POST",
                                     headers={"Origin": self.base,
                                              "Content-Type": "application/x-www-form-urlencoded"})
        self.opener.open(req, timeout=5).read()

    def alerts(self) -> list:
        with self.opener.open(self.base + "/api/alerts", timeout=5) as r:
            data = json.loads(r.read())
        return data.get("alerts", data) if isinstance(data, dict) else data


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"demo: the daemon exited ({proc.returncode}) while waiting for {what}")
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(every)
    raise SystemExit(f"demo: timed out after {timeout:.0f} s waiting for {what}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=PROJECT_ROOT / "demo-data", help="working folder (wiped)")
    ap.add_argument("--port", type=int, default=8080, help="console port")
    ap.add_argument("--check", action="store_true", help="exit 0 once the first alert is on the console")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the first alert")
    args = ap.parse_args(argv)
    data = shared_data_dir()
    if not (data / "lfw").is_dir() or not (data / "nasa").is_dir():
        raise SystemExit(f"demo: test images not found under {data}: set APPLIANCE_SHARED")
    root = args.dir.resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    print(f"demo: building the control room and the van under {root}")

    broker = TlsBroker(root / "broker")
    broker.start()
    daemon = None
    try:
        keys = root / "keys"
        sh("keys", "generate", "control-room", "--out", str(keys))
        sh("keys", "generate", "device", "--out", str(keys), "--name", DEVICE)
        subjects, photos = make_watchlist(root, data)
        clip = make_street(root, data, fps=10)
        config = write_config(root, broker, clip, args.port)
        van_keys = root / "van" / "keys"
        van_keys.mkdir(parents=True)
        shutil.copy(keys / "control-room.ed25519.pub", van_keys / "control-room.ed25519.pub")
        shutil.copy(keys / f"{DEVICE}.x25519.key", van_keys / "device.x25519.key")
        os.chmod(van_keys / "device.x25519.key", 0o600)
        # The device identity key signs the audit chain (deployments, alerts, decisions).
        for part in ("key", "pub"):
            shutil.copy(keys / f"{DEVICE}.ed25519.{part}", van_keys / f"device.ed25519.{part}")
        os.chmod(van_keys / "device.ed25519.key", 0o600)
        bundle = root / "watchlist.lfrwl"
        report = sh("watchlist", "build", "--subjects", str(subjects), "--photos", str(photos), "--out", str(bundle),
                    "--watchlist-id", "demo-watchlist", "--version", "1", "--signing-key",
                    str(keys / "control-room.ed25519.key"), "--recipient", f"{DEVICE}={keys / f'{DEVICE}.x25519.pub'}",
                    "--valid-days", "7", "--allow-refusals", "--json")
        built = json.loads(report)
        print(f"demo: watchlist built: {built.get('entries', built.get('subjects', '?'))} subjects "
              f"({len(built.get('refused', []))} photos refused)")
        sh("officers", "--config", str(config), "add", OFFICER, "--name", "Demo Officer", "--pin-stdin", stdin=PIN)

        with open(root / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{args.port}"
        console = ConsoleClient(base)
        wait_for(lambda: urllib.request.urlopen(base + "/login", timeout=2).status == 200, 120, "the console",
                 daemon)
        cr = broker.mqtt_config("control-room")
        sh("watchlist", "publish", str(bundle), "--broker", cr["broker"], "--device", DEVICE, "--ca", cr["ca_file"],
           "--cert", cr["cert_file"], "--key", cr["key_file"], "--wait-ack", "60")
        print("demo: watchlist published and applied by the van")
        deployment = start_deployment(config)
        if deployment:
            print(f"demo: {deployment}")
        print(f"\n  Console: {base}/   officer id: {OFFICER}   PIN: {PIN}\n")
        console.login()
        alerts = wait_for(console.alerts, args.timeout, "the first alert", daemon, every=1.0)
        first = alerts[0]
        print(f"demo: first alert on the console: subject {first.get('subject_id')} score "
              f"{first.get('score'):.3f} (threshold {first.get('threshold'):.3f}); an officer now decides")
        if args.check:
            return 0
        print("demo: running; press Ctrl-C to stop")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while daemon.poll() is None:
            time.sleep(1)
        return daemon.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        broker.stop()


def start_deployment(config: Path) -> str | None:
    """Matching runs only inside an authorised deployment (when the deployment command exists)."""
    r = subprocess.run([sys.executable, "-m", "appliance", "deployment", "--help"], capture_output=True)
    if r.returncode != 0:
        return None
    out = sh("deployment", "--config", str(config), "start", "--officer", OFFICER, "--purpose",
             "Demonstration on replayed footage", "--location", "Demo street (replay)", "--dpia", "DEMO-DPIA-1",
             "--hours", "2")
    return out.strip().splitlines()[-1] if out.strip() else "deployment started"


if __name__ == "__main__":
    raise SystemExit(main())
