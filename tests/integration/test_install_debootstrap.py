"""deploy/install.sh in a fresh Debian 12 root made with debootstrap, with systemd not running.

It checks the result (files, permissions, the unit and its enabled symlink, the user), provisions the device
inside the root and runs `appliance selftest --json` there: the only failures must be the camera (there is
none) and the broker (there is none). The clock is measured against a real chronyd time server on this machine
(the root shares its network), given at provisioning with --time-server. Then it re-runs the installer
(idempotent) and uninstalls, then purges.

The debootstrap root is cached as a tarball under /var/cache/appliance-tests (override with
$APPLIANCE_TEST_CACHE), with the apt archives and pip wheels, so a re-run takes well under a minute.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from time_server import chrony_time_server

from appliance.paths import PROJECT_ROOT, shared_dir

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("APPLIANCE_TEST_CACHE", "/var/cache/appliance-tests"))
TARBALL = CACHE / "debootstrap-bookworm-minbase.tar.gz"
INSTALL = PROJECT_ROOT / "deploy" / "install.sh"


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    for tool in ("debootstrap", "chroot", "mount", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} missing: apt-get install debootstrap"
    if not (shared_dir() / "models").is_dir():
        return f"model files not found in {shared_dir() / 'models'}: set APPLIANCE_SHARED"
    return None


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (deb822 or one-line sources)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file() and p.suffix in ("", ".list", ".sources"):
            texts.append(p.read_text(errors="replace"))
    for text in texts:
        for m in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            uri = m.group(1)
            if re.search(r"/debian/?$", uri) and "security" not in uri:
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def cached_root_tarball() -> Path:
    """A minbase bookworm root as a tarball, built once (locked against parallel builders)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if TARBALL.exists():
            return TARBALL
        build = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
        try:
            subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(build), debian_mirror()],
                           check=True, capture_output=True, timeout=900)
            tmp = TARBALL.with_suffix(".tmp")
            subprocess.run(["tar", "-C", str(build), "-czf", str(tmp), "."], check=True, timeout=300)
            tmp.rename(TARBALL)
        finally:
            _assert_no_mounts(build)
            shutil.rmtree(build, ignore_errors=True)
    return TARBALL


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if (line.split()[1] + "/").startswith(prefix)]


def _assert_no_mounts(root: Path) -> None:
    # Removing a root with /dev or a cache still bind-mounted inside would delete the host's files.
    for m in sorted(_mounts_under(root), reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    left = _mounts_under(root)
    assert not left, f"still mounted under {root}: {left}"


@contextmanager
def mounted(root: Path):
    """proc, sys and dev inside the root while we run commands there."""
    done: list[Path] = []
    try:
        for name in ("proc", "sys", "dev"):
            target = root / name
            target.mkdir(exist_ok=True)
            how = ["-t", "proc", "proc"] if name == "proc" else ["--bind", f"/{name}"]
            subprocess.run(["mount", *how, str(target)], check=True)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def in_root(root: Path, *cmd: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    with mounted(root):
        return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True, env=env, timeout=timeout)


def run_install(root: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(INSTALL), "--root", str(root), "--cache", str(CACHE / "install-cache"), *extra],
        capture_output=True, text=True, timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _ids(root: Path, name: str) -> tuple[int, int, str, str]:
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[2]), int(f[3]), f[5], f[6]
    raise AssertionError(f"no user {name} in the root")


def _group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        f = line.split(":")
        if f[0] == group:
            return [m for m in f[3].split(",") if m]
    return []


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture
def root():
    why = _requirements()
    if why:
        pytest.skip(why)
    tarball = cached_root_tarball()
    root = Path(tempfile.mkdtemp(prefix="appliance-root-", dir="/var/tmp"))
    try:
        subprocess.run(["tar", "-C", str(root), "-xzf", str(tarball)], check=True, timeout=300)
        # A machine behind a TLS-intercepting proxy needs its local CAs in the root too (a no-op elsewhere).
        local_cas = Path("/usr/local/share/ca-certificates")
        if local_cas.is_dir():
            shutil.copytree(local_cas, root / "usr/local/share/ca-certificates", dirs_exist_ok=True)
        yield root
    finally:
        _assert_no_mounts(root)
        shutil.rmtree(root)


def test_install_in_a_debootstrap_root(root, tmp_path):
    first = run_install(root, "--models", str(shared_dir() / "models"))
    assert "platform: debian, Debian 12 Bookworm" in first.stdout
    assert "systemd is not running: enabled appliance.service by symlink" in first.stdout

    # --- files, permissions, user ---------------------------------------------------------------------
    uid, gid, home, shell = _ids(root, "appliance")
    assert (home, shell) == ("/var/lib/appliance", "/usr/sbin/nologin")
    assert "appliance" in _group_members(root, "video")
    data = root / "var/lib/appliance"
    assert (_mode(data), data.stat().st_uid, data.stat().st_gid) == (0o700, uid, gid)
    conf = root / "etc/appliance"
    assert (_mode(conf), conf.stat().st_uid, conf.stat().st_gid) == (0o750, 0, gid)
    assert os.access(root / "opt/appliance/.venv/bin/appliance", os.X_OK)
    assert _mode(root / "usr/local/bin/appliance") == 0o755
    unit = root / "etc/systemd/system/appliance.service"
    assert unit.read_bytes() == (PROJECT_ROOT / "deploy/systemd/appliance.service").read_bytes()
    assert _mode(unit) == 0o644
    wants = root / "etc/systemd/system/multi-user.target.wants/appliance.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/appliance.service"
    assert not (root / "etc/systemd/system/appliance.service.d").exists()  # the Jetson drop-in is Jetson-only
    assert (root / "etc/udev/rules.d/99-lfr-camera.rules").is_file()
    assert (root / "etc/chrony/conf.d/appliance.conf").is_file()
    assert not list((root / "opt/appliance/src/models").rglob("*.tflite"))  # model files are not source
    r = in_root(root, "appliance", "models", "verify")
    assert r.returncode == 0 and r.stdout.count("ok ") >= 4, r.stdout + r.stderr

    # --- provision and self-test inside the root ---------------------------------------------------------
    r = in_root(root, "appliance", "keys", "generate", "control-room", "--out", "/root/control-room")
    assert r.returncode == 0, r.stderr
    with chrony_time_server(tmp_path / "ntp") as time_server:
        r = in_root(root, "appliance", "provision", "--device-id", "van-ci", "--broker", "mqtts://127.0.0.1:1",
                    "--control-room-key", "/root/control-room/control-room.ed25519.pub", "--time-server", time_server)
        assert r.returncode == 0, r.stdout + r.stderr
        selftest = in_root(root, "appliance", "selftest", "--json")
    assert "CN=van-ci" in r.stdout
    for private in ("keys/device.x25519.key", "keys/watchlist.key", "keys/events.key", "tls/device.key"):
        p = data / private
        assert (_mode(p), p.stat().st_uid) == (0o600, uid), private  # owned by the daemon's user
    cfg = root / "etc/appliance/appliance.toml"
    assert (_mode(cfg), cfg.stat().st_gid) == (0o640, gid)

    r = selftest
    doc = json.loads(r.stdout)
    status = {c["name"]: c for c in doc["checks"]}
    print("\n" + "\n".join(f"{c['status']:4} {c['name']:13} {c['reason']}" for c in doc["checks"]))
    assert set(doc["failed"]) == {"camera", "broker"}, doc["failed"]
    assert r.returncode == 1
    for name in ("models", "interpreter", "pipeline", "database_key", "clock", "disk"):
        assert status[name]["status"] == "pass", status[name]
    assert status["watchlist"]["status"] == "skip"

    # --- idempotent: a second run changes nothing that matters and keeps the device's keys ---------------
    keys_before = {p.name: p.read_bytes() for p in (data / "keys").iterdir()}
    second = run_install(root, "--models", str(shared_dir() / "models"))
    assert "apt: prerequisites present" in second.stdout
    assert "system-packages: installing" not in second.stdout + second.stderr  # nothing left to install
    assert "created system user" not in second.stdout
    assert {p.name: p.read_bytes() for p in (data / "keys").iterdir()} == keys_before
    assert wants.is_symlink() and _mode(data) == 0o700

    # --- uninstall keeps data, config and user; purge removes them ---------------------------------------
    run_install(root, "--uninstall")
    assert not unit.exists() and not wants.is_symlink() and not (root / "opt/appliance").exists()
    assert not (root / "usr/local/bin/appliance").exists()
    assert (data / "keys/watchlist.key").exists() and cfg.exists()
    run_install(root, "--uninstall")  # idempotent too
    run_install(root, "--uninstall", "--purge")
    assert not data.exists() and not conf.exists()
    with pytest.raises(AssertionError):
        _ids(root, "appliance")
