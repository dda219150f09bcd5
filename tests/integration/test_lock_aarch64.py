"""The devices' locks install on the devices: every pin of deploy/lock/linux-aarch64-*-device.txt has a binary
wheel for that platform whose sha256 is in the lock (pip's --require-hashes checks each file it takes).

Raspberry Pi OS Bookworm has CPython 3.11 and glibc 2.36; JetPack 6 (Ubuntu 22.04) has CPython 3.10 and glibc
2.35. pip does not expand `--platform manylinux_2_X_aarch64` to the older tags it implies, so every tag from
manylinux_2_17 up to the device's glibc is passed explicitly. systemd-python is sdist-only (no wheels at all on
PyPI): it compiles on the device against libsystemd-dev (deploy/system-packages.sh device), and its sdist's hash
is checked separately.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.devtools.lockfiles import PLATFORMS, lock_path, read_pins

SDIST_ONLY = {"systemd-python"}
DEVICES = [p for p in PLATFORMS if p.machine == "aarch64"]


def _glibc(plat) -> tuple[int, int]:
    major, minor = re.search(r"manylinux_(\d+)_(\d+)", plat.uv_platform).groups()
    return int(major), int(minor)


def _without(lock: Path, names: set[str], dest: Path) -> Path:
    """The lock minus the named packages' blocks (a pin line and its continuation lines)."""
    keep, skipping = [], False
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace():
            skipping = re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower() in names
        if not skipping:
            keep.append(line)
    dest.write_text("\n".join(keep) + "\n")
    return dest


def _pip_download(dest: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                           "-d", str(dest), *args], capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("plat", DEVICES, ids=[p.name for p in DEVICES])
def test_device_lock_installs_as_aarch64_wheels_with_their_hashes(tmp_path, plat):
    lock = _without(lock_path(plat, device=True), SDIST_ONLY, tmp_path / "lock.txt")
    major, minor = _glibc(plat)
    args = ["--require-hashes", "--no-deps", "--only-binary=:all:", "--python-version", plat.python,
            "--implementation", "cp", "-r", str(lock)]
    for m in range(minor, 16, -1):
        args += ["--platform", f"manylinux_{major}_{m}_aarch64"]
    args += ["--platform", "manylinux2014_aarch64"]
    r = _pip_download(tmp_path / "wheels", args)
    assert r.returncode == 0, f"{plat.name}: the lock does not install on the device:\n{r.stderr[-3000:]}"
    wheels = sorted(p.name for p in (tmp_path / "wheels").glob("*.whl"))
    # pip evaluates markers for the Python it runs on, so a pin for 3.10 only may be skipped here; each wheel it
    # took is a pinned version, and a pin without a matching wheel and hash would have failed the download.
    pins = read_pins(lock)
    for w in wheels:
        name, version = w.split("-")[:2]
        assert pins[re.sub(r"[-_.]+", "-", name).lower()][0] == version, w
    native = [w for w in wheels if not w.endswith("-none-any.whl")]
    assert native and all("aarch64" in w for w in native), native
    numpy = next(w for w in native if w.startswith("numpy-"))
    assert numpy.startswith("numpy-1."), numpy  # the system's picamera2/simplejpeg/OpenCV are built for numpy 1.x
    print(f"\n{plat.name}: {len(wheels)} wheels, {len(native)} native, every hash checked")


def test_systemd_python_sdist_matches_the_lock(tmp_path):
    plat = DEVICES[0]
    (version, hashes) = read_pins(lock_path(plat, device=True))["systemd-python"]
    assert hashes >= 1
    lock = tmp_path / "systemd.txt"
    block = re.search(r"^systemd-python==.*?(?=^\S|\Z)", lock_path(plat, device=True).read_text(), re.S | re.M)
    assert block
    lock.write_text(block.group(0))
    r = _pip_download(tmp_path / "s", ["--require-hashes", "--no-deps", "--no-binary=:all:", "-r", str(lock)])
    assert r.returncode == 0, r.stderr[-2000:]
    (archive,) = (tmp_path / "s").glob("systemd*python-*.tar.gz")
    assert version in archive.name
