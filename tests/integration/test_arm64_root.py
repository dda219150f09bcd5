"""The appliance on arm64: an arm64 Debian 12 root (deploy/image/build-root.sh) under qemu-user emulation.

`make arm64-test` builds the root (`make arm64-root`) and runs this with APPLIANCE_ARM64=1; without it the
module is skipped, so `make test` stays fast (the emulated runs take minutes). In the root, as on a device:
`appliance models verify`, `appliance selftest` with a replayed clip as the camera, `appliance detect` on the
crowd photos, and the embedding of the fixed 50 LFW faces (appliance.devtools.arch_compare). The same two
recordings are made on this x86_64 machine and compared within the tolerances argued in arch_compare's
docstring; the tables go to out/arm64-compare/compare.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance.devtools.arch_compare import face_set
from appliance.paths import PROJECT_ROOT, shared_dir

ROOT = Path(os.environ.get("APPLIANCE_ARM64_ROOT", PROJECT_ROOT / "out" / "arm64-root"))
OUT = PROJECT_ROOT / "out" / "arm64-compare"
SHARED_IN_ROOT = "/mnt/shared"  # the shared data, bind-mounted read-only for the duration of a command

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(7200),  # emulation: far beyond the suite's per-test default
    pytest.mark.skipif(os.environ.get("APPLIANCE_ARM64") != "1",
                       reason="emulated arm64 runs take minutes: make arm64-test (APPLIANCE_ARM64=1)"),
]


MERGED = OUT / "root"  # the root as the tests see it: an overlay, so that nothing they do lands in ROOT


@pytest.fixture(scope="module", autouse=True)
def _root_present():
    """An overlay over the built root: provisioning here must never leave keys in what `make image` ships."""
    if os.geteuid() != 0:
        pytest.fail("needs root (chroot, mount): run `sudo make arm64-test`")
    if not (ROOT / "opt/appliance/.venv/bin/appliance").exists():
        pytest.fail(f"no arm64 root at {ROOT}: run `make arm64-root`")
    OUT.mkdir(parents=True, exist_ok=True)
    upper, work = OUT / "overlay-upper", OUT / "overlay-work"
    subprocess.run(["umount", "-l", str(MERGED)], check=False, capture_output=True)
    for d in (upper, work, MERGED):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={ROOT.resolve()},upperdir={upper},workdir={work}", str(MERGED)], check=True)
    _fake_cpu_sysfs()
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(MERGED)], check=False)
        for d in (upper, work):
            shutil.rmtree(d, ignore_errors=True)


def _fake_cpu_sysfs() -> None:
    """The two sysfs files XNNPACK's cpuinfo needs on Linux/arm64, as a 2-core machine (in the overlay only).

    qemu-user (7.2) does not emulate /proc/cpuinfo for arm64, so cpuinfo cannot read the cores from it; with
    these files it initialises from them and the CPU features qemu reports (QEMU_CPU=cortex-a76), and LiteRT
    creates the XNNPACK delegate ("Created TensorFlow Lite XNNPACK delegate"), as on a Pi. Without any /sys
    it fails ("failed to parse both lists of possible and present processors") and the delegate is not used.
    """
    cpu = MERGED / "sys/devices/system/cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpu / name).write_text("0-1\n")


@contextmanager
def _mounted():
    done: list[Path] = []
    # No /sys: under qemu-user the process sees this x86 host's /proc/cpuinfo, and with the host's
    # /sys/devices/system/cpu beside it XNNPACK's cpuinfo crashes (SIGSEGV); see _fake_cpu_sysfs.
    binds = [("proc", None), ("dev", "/dev"), ("dev/pts", "/dev/pts"),
             (SHARED_IN_ROOT.lstrip("/"), str(shared_dir()))]
    try:
        for rel, src in binds:
            target = MERGED / rel
            target.mkdir(parents=True, exist_ok=True)
            how = ["-t", "proc", "proc"] if src is None else ["--bind", src]
            subprocess.run(["mount", *how, str(target)], check=True)
            done.append(target)
            if rel == SHARED_IN_ROOT.lstrip("/"):
                subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def in_root(*cmd: str, timeout: float = 1800, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "APPLIANCE_SHARED": SHARED_IN_ROOT, "APPLIANCE_MODELS": "/opt/appliance/models",
           # qemu-user emulates the Raspberry Pi 5's core: XNNPACK then picks the kernels it picks there.
           "QEMU_CPU": "cortex-a76"}
    with _mounted():
        return subprocess.run(["chroot", str(MERGED), *cmd], capture_output=True, text=True, env=env,
                              timeout=timeout, input=stdin)


def timed(what: str, fn):
    t0 = time.monotonic()
    r = fn()
    print(f"{what}: {time.monotonic() - t0:.1f} s")
    return r


def test_it_is_arm64_with_the_device_extra():
    r = in_root("/opt/appliance/.venv/bin/python", "-c",
                "import platform, systemd.daemon, ai_edge_litert, numpy, cv2; "
                "print(platform.machine(), numpy.__version__, cv2.__version__)")
    assert r.returncode == 0, r.stderr
    machine, numpy_v, cv2_v = r.stdout.split()
    assert machine == "aarch64"
    # The same pinned versions as the lock (the x86 venv is from its own lock, pinned to the same versions).
    import cv2
    import numpy
    assert (numpy_v, cv2_v) == (numpy.__version__, cv2.__version__)
    r = in_root("/opt/appliance/.venv/bin/pip", "show", "systemd-python")
    assert r.returncode == 0 and "Name: systemd-python" in r.stdout, r.stderr


def test_models_verify():
    r = timed("appliance models verify (arm64)", lambda: in_root("appliance", "models", "verify"))
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("ok ")]
    assert len(lines) >= 3


def test_selftest_with_a_replayed_clip(tmp_path):
    clip = PROJECT_ROOT / "out" / "arm64-compare" / "street.mp4"
    if not clip.exists():
        _make_clip(clip)
    dest = MERGED / "var/tmp/street.mp4"
    shutil.copy(clip, dest)
    keys = MERGED / "var/tmp/keys"
    shutil.rmtree(keys, ignore_errors=True)
    r = in_root("appliance", "keys", "generate", "control-room", "--out", "/var/tmp/keys")
    assert r.returncode == 0, r.stderr
    (MERGED / "etc/appliance/appliance.toml").unlink(missing_ok=True)
    r = in_root("appliance", "provision", "--device-id", "van-arm64", "--broker", "mqtts://127.0.0.1:8883",
                "--control-room-key", "/var/tmp/keys/control-room.ed25519.pub", "--source", "/var/tmp/street.mp4",
                "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    r = timed("appliance selftest (arm64)", lambda: in_root("appliance", "selftest", "--json"))
    report = json.loads(r.stdout)
    (OUT / "selftest-arm64.json").write_text(json.dumps(report, indent=1))
    checks = {c["name"]: c for c in report["checks"]} if isinstance(report["checks"], list) else report["checks"]
    for name, c in checks.items():
        print(f"{c['status']:5} {name:12} {c.get('reason', '')}")
    for name in ("camera", "models", "interpreter", "database_key"):
        assert checks[name]["status"] == "pass", checks[name]
    # No broker certificate in a bare root, and no time source inside a chroot: these may fail, nothing else.
    failed = {n for n, c in checks.items() if c["status"] == "fail"}
    assert failed <= {"broker", "clock", "temperature"}, failed


def _make_clip(out: Path) -> None:
    """The demo's street: LFW people walking past a crowd photo (720p, 10 fps)."""
    from appliance.devtools.demo import make_street
    from appliance.paths import shared_data_dir

    out.parent.mkdir(parents=True, exist_ok=True)
    made = make_street(out.parent, shared_data_dir(), fps=10)
    if made != out:
        shutil.move(made, out)


def test_detections_and_embeddings_agree_with_x86():
    crowd = sorted((shared_dir() / "data" / "crowd").glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))
    x86, arm = OUT / "x86_64", OUT / "aarch64"
    x86.mkdir(exist_ok=True)
    arm.mkdir(exist_ok=True)
    r = timed("appliance detect, 16 crowd photos (x86_64)", lambda: subprocess.run(
        [sys.executable, "-m", "appliance", "detect", "--json", *map(str, crowd)], capture_output=True, text=True,
        timeout=1800))
    assert r.returncode == 0, r.stderr
    (x86 / "detect.jsonl").write_text(r.stdout)
    r = timed("appliance detect, 16 crowd photos (arm64, qemu-user)", lambda: in_root(
        "appliance", "-v", "detect", "--json", *(f"{SHARED_IN_ROOT}/data/crowd/{p.name}" for p in crowd)))
    assert r.returncode == 0, r.stderr
    assert "XNNPACK delegate" in r.stderr, r.stderr[-2000:]  # the kernels compared are XNNPACK's
    (arm / "detect.jsonl").write_text(r.stdout)

    assert len(face_set(shared_dir() / "data" / "lfw")) == 50
    r = timed("embed 50 LFW faces (x86_64)", lambda: subprocess.run(
        [sys.executable, "-m", "appliance.devtools.arch_compare", "embed", "--out", str(x86 / "embed.json")],
        capture_output=True, text=True, timeout=1800))
    assert r.returncode == 0, r.stderr
    r = timed("embed 50 LFW faces (arm64, qemu-user)", lambda: in_root(
        "/opt/appliance/.venv/bin/python", "-m", "appliance.devtools.arch_compare", "embed", "--out",
        "/var/tmp/embed.json"))
    assert r.returncode == 0, r.stderr
    shutil.copy(MERGED / "var/tmp/embed.json", arm / "embed.json")

    r = subprocess.run([sys.executable, "-m", "appliance.devtools.arch_compare", "compare", str(x86), str(arm),
                        "--markdown", str(OUT / "compare.md"), "--evidence", str(OUT / "evidence-aarch64.toml"),
                        "--cpu", "cortex-a76 under qemu-user (TCG)"], capture_output=True, text=True)
    print(r.stdout)
    assert platform.machine() == "x86_64"
    assert r.returncode == 0, "x86 and arm64 disagree beyond the tolerances:\n" + r.stdout + r.stderr
