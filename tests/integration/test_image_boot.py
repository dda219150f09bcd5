"""Boot to alert: the arm64 image in qemu-system-aarch64 (-M virt, UEFI, TCG), provisioned from one file on its
boot partition, raises an alert for a watchlisted person in a replayed clip; the control room gets it.

`make image-test` runs this with APPLIANCE_IMAGE=1 (skipped otherwise: it takes many minutes under
emulation). The image is `make image`'s root plus a test overlay: a TLS mosquitto inside the guest (the
control room's broker, configured from deploy/mosquitto/), and a root shell on a virtio console for the test's
"technician". Network: user-mode, restrict=on, only hostfwd ports on 127.0.0.1.

1. The technician's steps: provision.toml (device id, broker, control-room key, CA, officer, camera = a replay
   clip) on the boot partition (mtools, no mount); the image on a disk 2 GiB larger (qemu-img resize); boot.
   The root partition and file system grow to fill the disk; first boot provisions, removes the file, writes
   the CSR to the boot partition, runs the self-test, and appliance.service starts.
2. The CSR is signed with the broker CA and given back as device.crt; the first-boot unit installs it.
3. Checks: systemd has the unit active, Type=notify, watchdog timestamps advancing; the van's status reaches
   `appliance control listen` here over TLS with its own certificate; a watchlist built and signed here is
   published to it; an officer starts a deployment and decides on the alert through the console (HTTPS,
   fingerprint pinned); the alert and the decision reach the control room.
4. Upgrade to a new build and roll back (deploy/image/appliance-upgrade): databases, keys and the audit chain
   survive both.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from image_vm import Shell, Vm, env_minus_proxy
from outbox_helpers import Proc

from appliance.devtools.demo import make_watchlist
from appliance.devtools.street_clip import plan_walkers, render, write_video
from appliance.paths import PROJECT_ROOT, shared_data_dir
from appliance.sync.local_broker import CONTROL_CA_DIR, DEPLOY, make_pki

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(7200),  # emulation: far beyond the suite's per-test default
    pytest.mark.skipif(os.environ.get("APPLIANCE_IMAGE") != "1",
                       reason="boots an emulated arm64 machine (many minutes): make image-test (APPLIANCE_IMAGE=1)"),
]

ROOT = Path(os.environ.get("APPLIANCE_ARM64_ROOT", PROJECT_ROOT / "out" / "arm64-root"))
WORK = PROJECT_ROOT / "out" / "image-test"
BUILD_IMAGE = PROJECT_ROOT / "deploy" / "image" / "build-image.sh"
DEVICE, OFFICER, PIN = "van-07", "4711", "246810"
WATCHED = "Alan_Ball"  # on the watchlist (first LFW photo) and in the clip (second photo)
PASSER_BY = "Adam_Sandler"
CLI = [sys.executable, "-m", "appliance"]
GROW_MIB = 2048  # the test's disk is the image plus this: the first boot grows the root into it


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def appliance(*args: str, timeout: float = 600) -> str:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env_minus_proxy())
    assert r.returncode == 0, f"appliance {' '.join(args)}:\n{r.stdout[-2000:]}{r.stderr[-3000:]}"
    return r.stdout


def make_clip(out: Path) -> Path:
    data = shared_data_dir()
    people = [sorted((data / "lfw" / WATCHED).glob("*.jpg"))[1], sorted((data / "lfw" / PASSER_BY).glob("*.jpg"))[0]]
    import cv2
    frames = render(cv2.imread(str(data / "crowd" / "13.jpg")), plan_walkers(people, fps=5, seconds_each=4.0),
                    (1280, 720))
    return write_video(frames, out, 5)


def build_test_image(image: Path, pki: Path) -> float:
    """make image's root + the test overlay: the broker in the guest and the technician's shell on hvc0."""
    overlay = WORK / "overlay"
    certs = overlay / "etc/mosquitto/certs"
    certs.mkdir(parents=True)
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, certs / name)
    # The control room's listener (8884) trusts the control room's own CA (deploy/mosquitto/mosquitto.conf).
    shutil.copy(pki / CONTROL_CA_DIR / "ca.crt", certs / "control-room-ca.crt")
    conf = (DEPLOY / "mosquitto.conf").read_text()
    (overlay / "etc/mosquitto/mosquitto.conf").write_text(conf + "\nlog_dest syslog\n")
    shutil.copy(DEPLOY / "lfr.acl", overlay / "etc/mosquitto/lfr.acl")
    getty = overlay / "etc/systemd/system/serial-getty@hvc0.service.d"
    getty.mkdir(parents=True)
    (getty / "autologin.conf").write_text(
        "# Test image only: the test's technician shell (tests/integration/image_vm.py).\n[Service]\nExecStart=\n"
        "ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud %I 115200,38400,9600 $TERM\n")
    # Emulation (TCG) is 20-100x slower than the hardware: starting Python, OpenCV and three interpreters
    # takes minutes, not the seconds TimeoutStartSec=120s is sized for. Test image only; the watchdog is kept.
    dropin = overlay / "etc/systemd/system/appliance.service.d"
    dropin.mkdir(parents=True)
    (dropin / "zz-emulation.conf").write_text("# Test image under qemu TCG only.\n[Service]\nTimeoutStartSec=30min\n")
    # Under TCG on a loaded machine udev's first pass took longer than systemd's 90 s device timeout (the run
    # of 2026-12-03 15:11: "Timed out waiting for device /dev/hvc0", so no technician's shell). Test image only.
    (overlay / "etc/systemd/system.conf.d").mkdir(parents=True)
    (overlay / "etc/systemd/system.conf.d/zz-emulation.conf").write_text(
        "# Test image under qemu TCG only.\n[Manager]\nDefaultDeviceTimeoutSec=15min\n")
    # The shell's virtio console: load its driver at once (udev's autoload came after the 90 s device timeout).
    (overlay / "etc/modules-load.d").mkdir(parents=True)
    (overlay / "etc/modules-load.d/test-shell.conf").write_text("virtio_console\n")
    customize = WORK / "customize.sh"
    customize.write_text(
        "#!/usr/bin/env bash\n# Test image: mosquitto (in the guest) must read its key.\nset -euo pipefail\n"
        "gid=$(awk -F: '$1==\"mosquitto\"{print $3}' \"$1/etc/group\")\n"
        "chown -R 0:\"$gid\" \"$1/etc/mosquitto/certs\" && chmod 0640 \"$1/etc/mosquitto/certs/server.key\"\n"
        "chmod 0644 \"$1/etc/mosquitto/mosquitto.conf\" \"$1/etc/mosquitto/lfr.acl\"\n")
    customize.chmod(0o755)
    t0 = time.monotonic()
    r = subprocess.run([str(BUILD_IMAGE), str(ROOT), str(image), "--overlay", str(overlay), "--customize",
                        str(customize), "--enable", "mosquitto.service", "--enable", "serial-getty@hvc0.service"],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log(r.stderr.strip().splitlines()[-1])
    return time.monotonic() - t0


def image_root_partition_bytes(image: Path) -> int:
    """The size of the root partition (the second) as build-image.sh made it."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True,
                                      text=True).stdout)["partitiontable"]
    return table["partitions"][1]["size"] * table.get("sectorsize", 512)


def mcopy(image: Path, src: Path, dest: str) -> None:
    # The boot partition starts at 1 MiB (build-image.sh); mtools reads it in the image file, no mount.
    subprocess.run(["mcopy", "-o", "-i", f"{image}@@1M", str(src), f"::{dest}"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def sign_csr(pki: Path, csr_pem: str, out: Path) -> None:
    csr = WORK / "device.csr"
    csr.write_text(csr_pem)
    ext = WORK / "client.ext"
    ext.write_text("basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey",
                    str(pki / "ca.key"), "-CAcreateserial", "-days", "30", "-sha256", "-extfile", str(ext),
                    "-out", str(out)], check=True, capture_output=True)


class Console:
    """The officer's browser, minus the browser: HTTPS to the van's console with its fingerprint pinned."""

    def __init__(self, port: int, fingerprint: str):
        self.base = f"https://127.0.0.1:{port}"
        self.fingerprint = fingerprint.replace(":", "").lower()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # self-signed by the van: pinned by fingerprint instead (check_pin)
        self.ctx = ctx
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                                  urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  urllib.request.ProxyHandler({}))
        self.csrf = ""

    def check_pin(self) -> None:
        port = int(self.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, self.ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest() == self.fingerprint, "the console's certificate is not the van's"

    def request(self, path: str, body: dict | bytes | None = None, form: bool = False):
        headers = {"Origin": self.base}
        data = None
        if body is not None:
            if form:
                data = body if isinstance(body, bytes) else urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
                headers["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method="POST" if body is not None else "GET")
        with self.opener.open(req, timeout=60) as r:
            return r.read().decode()

    def login(self) -> None:
        self.request("/login", {"officer_id": OFFICER, "pin": PIN}, form=True)
        page = self.request("/")
        self.csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def systemd_show(shell: Shell) -> dict[str, str]:
    out = shell.run("systemctl show appliance.service -p Type,ActiveState,SubState,WatchdogUSec,"
                    "WatchdogTimestampMonotonic,NRestarts,StatusText")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def booted():
    if os.geteuid() != 0:
        pytest.fail("needs root (the image build keeps file owners): sudo make image-test")
    if not (ROOT / "opt/appliance/.venv/bin/appliance").exists():
        pytest.fail(f"no arm64 root at {ROOT}: make arm64-root")
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    timings: dict[str, float] = {}
    pki = make_pki(WORK / "pki", ["control-room"])
    keys = WORK / "keys"
    appliance("keys", "generate", "control-room", "--out", str(keys))
    image = WORK / "lfr-arm64-test.img"
    timings["image build (s)"] = build_test_image(image, pki)

    # The technician: one provisioning file (and the files it names) on the boot partition.
    make_clip(WORK / "street.mp4")
    prov = WORK / "provision.toml"
    prov.write_text(f'''device_id = "{DEVICE}"
broker = "mqtts://localhost:8883"
control_room_key = "control-room.ed25519.pub"
ca = "ca.crt"
source = "replay:street.mp4"
console_bind = "10.0.2.15"

[[officers]]
id = "{OFFICER}"
name = "PC Test"
pin = "{PIN}"
''')
    for f, dest in ((prov, "provision.toml"), (keys / "control-room.ed25519.pub", "control-room.ed25519.pub"),
                    (pki / "ca.crt", "ca.crt"), (WORK / "street.mp4", "street.mp4")):
        mcopy(image, f, f"/appliance/{dest}")

    # The technician writes the image to a larger disk: the first boot must grow the root to fill it.
    root_bytes = image_root_partition_bytes(image)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "raw", str(image), f"+{GROW_MIB}M"], check=True)
    disk_bytes = image.stat().st_size

    # The broker's two listeners (vans 8883, the control room 8884) and the console (HTTPS, its default port).
    vm = Vm(image, WORK, {"broker": 8883, "control": 8884, "console": 8080})
    t0 = time.monotonic()
    vm.start()
    log(f"qemu started: broker on 127.0.0.1:{vm.ports['broker']} (control room {vm.ports['control']}), "
        f"console on 127.0.0.1:{vm.ports['console']}")
    try:
        vm.wait_console(r"appliance-firstboot: removed provision\.toml", 3600)
        timings["boot to provisioned (s)"] = time.monotonic() - t0
        vm.wait_console(r"appliance-firstboot: self-test (passed|reported failures)", 3600)
        timings["boot to first-boot self-test done (s)"] = time.monotonic() - t0
        log("first boot done:\n" + "\n".join(ln for ln in vm.console().splitlines() if "appliance-firstboot" in ln))
        shell = Shell(vm.shell_sock, timeout=600)
        yield {"vm": vm, "shell": shell, "pki": pki, "keys": keys, "timings": timings, "t0": t0,
               "root_bytes": root_bytes, "disk_bytes": disk_bytes}
    finally:
        vm.poweroff()
        (WORK / "timings.json").write_text(json.dumps(timings, indent=1))
        log(f"timings: {json.dumps(timings)}")


def test_first_boot_provisioned_and_cleaned_the_boot_partition(booted):
    shell = booted["shell"]
    listing = shell.run("ls /boot/efi/appliance /boot/efi/appliance/out")
    assert "provision.toml" not in listing.split()  # the file with the PINs is gone
    assert "street.mp4" not in listing.split() and "ca.crt" not in listing.split()
    for name in (f"{DEVICE}.csr", "provision.txt", "selftest.txt"):
        assert name in listing, listing
    selftest = shell.run("cat /boot/efi/appliance/out/selftest.txt")
    log(f"first-boot self-test:\n{selftest}")
    assert re.search(r"PASS\s+camera", selftest) and re.search(r"PASS\s+models", selftest)
    assert re.search(r"PASS\s+interpreter", selftest) and re.search(r"PASS\s+database_key", selftest)
    assert shell.run("stat -c '%U %a' /etc/appliance/appliance.toml") == "root 640"


def test_the_root_grew_to_fill_the_disk(booted):
    """qemu-img resize made the disk GROW_MIB larger than the image: the root partition and its file system
    fill it after the first boot (appliance-growroot.service: growpart, resize2fs)."""
    vm, shell = booted["vm"], booted["shell"]
    grew = [ln for ln in vm.console().splitlines() if "appliance-growroot" in ln]
    log("grow root:\n" + "\n".join(grew))
    fs_bytes = int(shell.run("findmnt -bno SIZE /"))
    part_bytes = int(shell.run("blockdev --getsize64 $(findmnt -no SOURCE /)"))
    disk_bytes = int(shell.run("blockdev --getsize64 /dev/vda"))
    log(f"root partition in the image {booted['root_bytes'] >> 20} MiB; now: partition {part_bytes >> 20} MiB, "
        f"file system {fs_bytes >> 20} MiB, disk {disk_bytes >> 20} MiB")
    assert disk_bytes == booted["disk_bytes"]
    assert part_bytes >= booted["root_bytes"] + (GROW_MIB - 2) * 2**20, (part_bytes, booted["root_bytes"])
    assert fs_bytes > booted["root_bytes"], (fs_bytes, booted["root_bytes"])  # larger than the image's root
    # The GPT is whole again (its backup header moved to the disk's new end).
    log("sfdisk --verify: " + shell.run("sfdisk --verify /dev/vda 2>&1", check=False))
    assert "already fills" in shell.run("appliance-growroot")  # the next boots: nothing to do


def test_boot_to_alert(booted):
    vm, shell, pki, keys, timings = booted["vm"], booted["shell"], booted["pki"], booted["keys"], booted["timings"]
    # The control room signs the CSR from the boot partition; the certificate goes back the same way.
    csr = shell.run(f"cat /boot/efi/appliance/out/{DEVICE}.csr")
    sign_csr(pki, csr + "\n", WORK / f"{DEVICE}.crt")
    shell.write_file("/boot/efi/appliance/device.crt", (WORK / f"{DEVICE}.crt").read_bytes())
    # Under TCG one BlazeFace run takes ~2.4 s (first-boot self-test), so the default 14 tiled runs per frame
    # take longer than WatchdogSec=30s and the watchdog rightly kills the daemon. The test keeps the hardened
    # unit as it is and looks at the whole frame only (the clip's faces are large): a speed concession to the
    # emulator, test only.
    shell.run("printf '\\n[detector]\\ntiles = [1]\\n' >> /etc/appliance/appliance.toml")
    out = shell.run("systemctl start appliance-firstboot.service && journalctl -b -u appliance-firstboot -o cat "
                    "| tail -n 30 && systemctl restart appliance.service", timeout=1800)
    log(f"certificate installed by the first-boot unit:\n{out}")
    assert "device.crt" not in shell.run("ls /boot/efi/appliance").split()

    # systemd: active, Type=notify (so "active" means the daemon said READY=1), watchdog fed.
    t0 = time.monotonic()
    deadline = t0 + 1800
    while True:
        s = systemd_show(shell)
        if s.get("ActiveState") == "active" or time.monotonic() > deadline:
            break
        time.sleep(5)
    timings["service restart to active (s)"] = time.monotonic() - t0
    log(f"systemd: {s}")
    assert s["Type"] == "notify" and s["ActiveState"] == "active" and s["SubState"] == "running", s
    assert s["WatchdogUSec"] in ("30s", "30000000"), s  # systemd 252 prints it as a time span
    first = int(s["WatchdogTimestampMonotonic"])
    time.sleep(40)
    s2 = systemd_show(shell)
    assert int(s2["WatchdogTimestampMonotonic"]) > first, "the watchdog was not fed in 40 s"
    assert s2["NRestarts"] == s["NRestarts"], "the unit restarted (watchdog or crash)"

    # The control room listens here, through the forwarded broker port, with its own certificate.
    room = pki / CONTROL_CA_DIR  # the control room's certificate, from its own CA
    rx = Proc([*CLI, "control", "listen", "--broker", f"mqtts://127.0.0.1:{vm.ports['control']}", "--db",
               str(WORK / "control.db"), "--db-keys", str(WORK / "control-keys"), "--ca", str(pki / "ca.crt"),
               "--cert", str(room / "control-room.crt"), "--key", str(room / "control-room.key")], "control-room")
    try:
        rx.wait_line(rf" {DEVICE} status (starting|running|degraded)", 600)
        broker_log = shell.run(f"journalctl -u mosquitto -o cat | grep -i '{DEVICE}' | tail -n 3", check=False)
        log(f"broker: {broker_log}")

        # A watchlist built and signed here, encrypted to the van's key, published over MQTT.
        x25519 = WORK / f"{DEVICE}.x25519.pub"
        x25519.write_text(shell.run("cat /var/lib/appliance/keys/device.x25519.pub") + "\n")
        subjects, photos = make_watchlist(WORK / "watchlist", shared_data_dir())
        bundle = WORK / "watchlist.lfrwl"
        appliance("watchlist", "build", "--subjects", str(subjects), "--photos", str(photos), "--out", str(bundle),
                  "--watchlist-id", "image-test", "--version", "1", "--signing-key",
                  str(keys / "control-room.ed25519.key"), "--recipient", f"{DEVICE}={x25519}", "--valid-days", "7",
                  "--allow-refusals", "--json")
        t1 = time.monotonic()
        appliance("watchlist", "publish", str(bundle), "--broker", f"mqtts://127.0.0.1:{vm.ports['control']}",
                  "--device", DEVICE, "--ca", str(pki / "ca.crt"), "--cert", str(room / "control-room.crt"),
                  "--key", str(room / "control-room.key"), "--wait-ack", "900", timeout=1000)
        timings["watchlist publish to applied (s)"] = time.monotonic() - t1
        rx.wait_line(rf" {DEVICE} watchlist applied image-test v1", 120)

        # The officer: console over HTTPS (fingerprint from provisioning), deployment, then the alert.
        fp = re.search(r"certificate SHA-256 fingerprint\s+([0-9A-F:]{95})",
                       shell.run("cat /boot/efi/appliance/out/provision.txt")).group(1)
        console = Console(vm.ports["console"], fp)
        console.check_pin()
        console.login()
        console.request("/api/deployment/start", {"purpose": "Image boot test on a replayed clip",
                                                  "location": "QEMU virt (replay)", "dpia": "TEST-DPIA-1",
                                                  "hours": 2})
        rx.wait_line(rf" {DEVICE} deployment \S+ started by {OFFICER}", 300)
        t2 = time.monotonic()
        alerts: list = []
        while time.monotonic() - t2 < 1800 and not alerts:
            data = json.loads(console.request("/api/alerts"))
            alerts = data.get("alerts", data) if isinstance(data, dict) else data
            time.sleep(5)
        timings["deployment start to first alert on the console (s)"] = time.monotonic() - t2
        assert alerts, "no alert on the console within 30 min"
        alert = alerts[0]
        log(f"alert on the console: subject {alert['subject_id']} score {alert['score']:.3f} "
            f"threshold {alert['threshold']:.3f}")
        rx.wait_line(rf" {DEVICE} alert {alert['event_id']} subject W-000 ", 600)
        decided = json.loads(console.request(f"/api/alerts/{alert['event_id']}/decision",
                                             {"decision": "confirm", "note": "image boot test"}))
        log(f"decision: {decided.get('decision', decided)}")
        rx.wait_line(rf" {DEVICE} decision \S+ on alert {alert['event_id']}: confirm by {OFFICER}", 600)
        (WORK / "control-room.log").write_text("\n".join(rx.lines) + "\n")
        log("control room received:\n" + "\n".join(ln for ln in rx.lines if f" {DEVICE} " in ln))
    finally:
        rx.kill()


def build_new_wheel(version: str) -> Path:
    """A new build of this source tree: the same code with another version number, as a wheel."""
    src = WORK / "newbuild"
    shutil.rmtree(src, ignore_errors=True)
    anywhere = shutil.ignore_patterns("*.tflite", "__pycache__", "*.egg-info")
    top_level = {".venv", ".git", "out", "reports", "bench"}  # not appliance/bench, a package of the build

    def ignore(folder: str, names: list[str]) -> set[str]:
        return set(anywhere(folder, names)) | (top_level & set(names) if Path(folder) == PROJECT_ROOT else set())

    shutil.copytree(PROJECT_ROOT, src, ignore=ignore)
    init = src / "appliance" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', f'__version__ = "{version}"'))
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', f'version = "{version}"', 1))
    dist = WORK / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(src)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return next(dist.glob("lfr_appliance-*.whl"))


def durable_state(shell: Shell) -> dict[str, str]:
    """What must survive an upgrade and a rollback: key files, databases readable, the audit chain intact."""
    keys = shell.run("cd /var/lib/appliance && sha256sum keys/* tls/device.key tls/device.crt | sort")
    # As the service user: root opening the live SQLCipher files could leave root-owned -wal/-shm files behind.
    audit = shell.run("runuser -u appliance -- appliance audit verify")
    assert audit.startswith("audit chain OK"), audit
    entries = int(re.search(r"OK: (\d+) entries", audit).group(1))
    return {"keys": keys, "audit": audit, "entries": entries}


def test_upgrade_and_rollback(booted):
    shell, timings = booted["shell"], booted["timings"]
    before = durable_state(shell)
    log(f"before the upgrade: audit: {before['audit']}")
    assert "0.1.0" in shell.run("appliance --version")
    wheel = build_new_wheel("0.1.1")
    shell.write_file("/var/tmp/" + wheel.name, wheel.read_bytes())

    t0 = time.monotonic()
    out = shell.run(f"APPLIANCE_UPGRADE_START_TIMEOUT=1800 appliance-upgrade install /var/tmp/{wheel.name}",
                    timeout=2400)
    timings["upgrade (s)"] = time.monotonic() - t0
    log(f"upgrade:\n{out}")
    assert "appliance 0.1.1" in shell.run("appliance --version")
    s = systemd_show(shell)
    assert s["ActiveState"] == "active" and s["Type"] == "notify", s
    after_upgrade = durable_state(shell)
    assert after_upgrade["keys"] == before["keys"]
    assert after_upgrade["entries"] >= before["entries"]  # the same chain, perhaps longer (never restarted)

    t0 = time.monotonic()
    out = shell.run("APPLIANCE_UPGRADE_START_TIMEOUT=1800 appliance-upgrade rollback", timeout=2400)
    timings["rollback (s)"] = time.monotonic() - t0
    log(f"rollback:\n{out}")
    assert "appliance 0.1.0" in shell.run("appliance --version")
    s = systemd_show(shell)
    assert s["ActiveState"] == "active", s
    after_rollback = durable_state(shell)
    assert after_rollback["keys"] == before["keys"]
    assert after_rollback["entries"] >= after_upgrade["entries"]
    log(f"after the rollback: {after_rollback['audit']}")
    # The alert and the decision made before the upgrade are still there, readable by the old build.
    decisions = shell.run("runuser -u appliance -- appliance audit export | grep -c decision", check=False)
    assert int(decisions.splitlines()[-1]) >= 1, decisions
