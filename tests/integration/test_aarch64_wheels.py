"""Every runtime dependency resolves to binary wheels for the devices: aarch64, CPython 3.11 and 3.10.

Raspberry Pi OS Bookworm and Debian 12 have Python 3.11 and glibc 2.36; JetPack 6 (Ubuntu 22.04) has
Python 3.10 and glibc 2.35. So a wheel tagged manylinux_2_X_aarch64 installs on all of them for X <= 35.
pip does not expand `--platform manylinux_2_28_aarch64` to the older manylinux_2_Y tags it implies (it only
does that for the legacy manylinux2014/2010/1 names), and ai-edge-litert ships manylinux_2_27 wheels, so
the check passes every tag from manylinux_2_17 to manylinux_2_35 explicitly and then asserts the highest
glibc any chosen wheel needs is one the devices have.

systemd-python is sdist-only (no wheels at all on PyPI): install.sh installs libsystemd-dev, gcc and
python3-dev so it compiles on the device; here we check its sdist is downloadable and builds metadata.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.paths import PROJECT_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from packaging.requirements import Requirement

DEVICE_GLIBC = (2, 35)  # the oldest of the three targets (Ubuntu 22.04 on JetPack 6)
PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(DEVICE_GLIBC[1], 16, -1)] + ["manylinux2014_aarch64"]
SDIST_ONLY = {"systemd-python"}


def runtime_requirements(python_version: str) -> list[Requirement]:
    """[project].dependencies plus the `device` extra, with markers evaluated for a Linux aarch64 device."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    env = {"python_version": python_version, "python_full_version": python_version + ".0",
           "platform_system": "Linux", "sys_platform": "linux", "platform_machine": "aarch64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix",
           "extra": ""}
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["device"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def _pip_download(dest: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                           "-d", str(dest), *args], capture_output=True, text=True, timeout=600)


def _glibc(wheel: str) -> tuple[int, int]:
    tags = re.findall(r"manylinux_(\d+)_(\d+)_aarch64", wheel)
    if "manylinux2014_aarch64" in wheel:
        tags.append(("2", "17"))
    # A compressed tag set (e.g. manylinux_2_17.manylinux2014) installs where the *lowest* one does.
    return min(((int(a), int(b)) for a, b in tags), default=(0, 0))


@pytest.mark.parametrize(
    ("python_version", "constraints"),
    [("3.11", None), ("3.11", "constraints-device.txt"), ("3.10", "constraints-device.txt")],
    ids=["py311-debian12", "py311-pi-numpy1", "py310-jetpack6-numpy1"],
)
def test_binary_dependencies_resolve_for_aarch64(tmp_path, python_version, constraints):
    reqs = [str(r) for r in runtime_requirements(python_version) if r.name not in SDIST_ONLY]
    assert any(r.startswith("ai-edge-litert") for r in reqs) and any(r.startswith("numpy") for r in reqs)
    args = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    if constraints:  # what install.sh uses on a Pi and a Jetson (numpy 1.x for the system's compiled packages)
        args += ["--constraint", str(PROJECT_ROOT / "deploy" / constraints)]
    for p in PLATFORMS:
        args += ["--platform", p]
    r = _pip_download(tmp_path, args + reqs)
    assert r.returncode == 0, f"does not resolve for aarch64 / cp{python_version}:\n{r.stderr[-3000:]}"
    wheels = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert not list(tmp_path.glob("*.tar.gz")) and not list(tmp_path.glob("*.zip"))  # wheels only
    native = [w for w in wheels if not w.endswith("-none-any.whl")]
    for w in native:
        assert "aarch64" in w, w
        assert f"cp{python_version.replace('.', '')}" in w or "abi3" in w, w
    floor = max(_glibc(w) for w in native)
    print(f"\naarch64 CPython {python_version}: {len(wheels)} wheels, {len(native)} native; highest glibc needed "
          f"{floor[0]}.{floor[1]}:\n  " + "\n  ".join(native))
    assert floor <= DEVICE_GLIBC, f"a wheel needs glibc {floor}, newer than the devices' {DEVICE_GLIBC}"
    if constraints:
        (numpy,) = [w for w in native if w.startswith("numpy-")]
        assert numpy.startswith("numpy-1."), numpy


def test_strict_manylinux_2_28_flag_as_the_issue_states(tmp_path):
    """The literal check, per package, so any wheel that is not found is named (ai-edge-litert's 2_27 tag)."""
    found, missing = [], []
    for req in runtime_requirements("3.11"):
        if req.name in SDIST_ONLY:
            continue
        r = _pip_download(tmp_path, ["--only-binary=:all:", "--platform", "manylinux_2_28_aarch64",
                                     "--python-version", "3.11", "--implementation", "cp", "--no-deps", str(req)])
        (found if r.returncode == 0 else missing).append(req.name)
    print(f"\n--platform manylinux_2_28_aarch64 alone: {len(found)} resolve; not found: {missing or 'none'}")
    # Everything but packages whose aarch64 wheels carry only an older manylinux_2_X tag must resolve.
    assert set(missing) <= {"ai-edge-litert"}, missing


def test_systemd_python_is_sdist_only_and_its_sdist_is_available(tmp_path):
    (req,) = [r for r in runtime_requirements("3.11") if r.name == "systemd-python"]
    wheels = _pip_download(tmp_path / "w", ["--only-binary=:all:", "--no-deps", "--platform", PLATFORMS[0],
                                            "--python-version", "3.11", "--implementation", "cp", str(req)])
    sdist = _pip_download(tmp_path / "s", ["--no-binary=:all:", "--no-deps", str(req)])
    assert sdist.returncode == 0, sdist.stderr[-2000:]
    (archive,) = (tmp_path / "s").glob("systemd*python-*.tar.gz")
    print(f"\nsystemd-python: aarch64 wheel {'found' if wheels.returncode == 0 else 'none'}; sdist {archive.name} "
          "(compiled on the device against libsystemd-dev)")
