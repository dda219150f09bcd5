"""The dependency lock: one hash-pinned requirements file per platform the appliance runs on.

`make lock` writes them with uv (`uv pip compile --generate-hashes`), `make install`, `deploy/install.sh` and
`.ci/run` install from them with `pip install --require-hashes`, and `check` (a unit test, and `make lint`)
fails when `pyproject.toml` and the lock disagree. The shipped threshold was calibrated on the locked
versions of numpy, OpenCV and the interpreter, so a change here is a recalibration (docs/install.md).

Two files per platform, resolved together so that they pin the same versions:
  <platform>.txt         every extra (dev, device, fast search, eval): developer machines and CI;
  <platform>-device.txt  the runtime, the `device` and `onnx` extras: what deploy/install.sh puts on a van.

    python -m appliance.devtools.lockfiles write     # needs uv and the package index
    python -m appliance.devtools.lockfiles check     # offline
    python -m appliance.devtools.lockfiles path [--device]   # the lock file for this machine

Only the standard library (and `packaging` for `check`) is imported: `path` runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_DIR = PROJECT_ROOT / "deploy" / "lock"
EXTRA_CONSTRAINTS = LOCK_DIR / "constraints.txt"  # inputs beside pyproject.toml, each with its reason
INPUTS_LINE = "# inputs-sha256: "
# What a van installs beside the runtime: systemd-python, and ONNX Runtime so a force's licensed ONNX model is a
# manifest entry away (docs/model-card.md), not a reinstall.
DEVICE_EXTRAS = ("device", "onnx")


@dataclass(frozen=True)
class Platform:
    name: str
    uv_platform: str  # uv's --python-platform: the wheel tags that platform's glibc accepts
    python: str
    machine: str
    what: str


PLATFORMS = (
    Platform("linux-x86_64-py3.11", "x86_64-manylinux_2_36", "3.11", "x86_64",
             "Debian 12 on x86_64: developer machines, CI, an x86 van computer"),
    Platform("linux-aarch64-py3.11", "aarch64-manylinux_2_36", "3.11", "aarch64",
             "Raspberry Pi OS Bookworm (Pi 5) and the Debian 12 arm64 image"),
    Platform("linux-aarch64-py3.10", "aarch64-manylinux_2_35", "3.10", "aarch64",
             "Jetson Orin on JetPack 6 (Ubuntu 22.04)"),
)


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def inputs_digest(pyproject: dict | None = None) -> str:
    """What the lock was resolved from: requires-python, the dependencies, every extra, constraints.txt."""
    project = (pyproject or _pyproject())["project"]
    inputs = {k: project.get(k) for k in ("requires-python", "dependencies", "optional-dependencies")}
    inputs["constraints"] = EXTRA_CONSTRAINTS.read_text() if EXTRA_CONSTRAINTS.exists() else ""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_path(plat: Platform, device: bool = False) -> Path:
    return LOCK_DIR / f"{plat.name}{'-device' if device else ''}.txt"


def this_platform() -> Platform:
    machine = platform.machine()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    for plat in PLATFORMS:
        if plat.machine == machine and plat.python == python:
            return plat
    names = ", ".join(p.name for p in PLATFORMS)
    raise SystemExit(f"no lock for linux-{machine}-py{python}: the appliance is locked for {names} "
                     f"(add a platform to appliance/devtools/lockfiles.py and run `make lock`)")


# ---------------------------------------------------------------------------------------------------------
# write
# ---------------------------------------------------------------------------------------------------------
def _compile(plat: Platform, out: Path, extras: list[str], constraint: Path | None) -> None:
    cmd = [sys.executable, "-m", "uv", "pip", "compile", "pyproject.toml", "--quiet", "--generate-hashes",
           "--python-version", plat.python, "--python-platform", plat.uv_platform,
           "--no-strip-markers", "--custom-compile-command", "make lock", "-o", str(out)]
    for extra in extras:
        cmd += ["--extra", extra]
    for c in (EXTRA_CONSTRAINTS, constraint):
        if c:
            cmd += ["--constraint", str(c)]
    subprocess.run(cmd, cwd=PROJECT_ROOT, check=True)
    body = out.read_text()
    out.write_text(f"# Lock for {plat.name}: {plat.what}.\n"
                   f"{INPUTS_LINE}{inputs_digest()}\n{body}")


def write() -> None:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    extras = sorted(_pyproject()["project"]["optional-dependencies"])
    for plat in PLATFORMS:
        full = lock_path(plat)
        _compile(plat, full, extras, None)
        # The device lock is constrained by the full one, so a van runs the very versions CI tested.
        _compile(plat, lock_path(plat, device=True), list(DEVICE_EXTRAS), full)
        print(f"wrote {full.relative_to(PROJECT_ROOT)} and its -device lock")


# ---------------------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------------------
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def read_pins(path: Path) -> dict[str, tuple[str, int]]:
    """{normalised name: (version, number of hashes)} from a uv/pip-tools requirements file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        m = _PIN.match(line)
        if m:
            current = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            pins[current] = (m.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _marker_env(plat: Platform) -> dict[str, str]:
    return {"python_version": plat.python, "python_full_version": plat.python + ".0", "platform_system": "Linux",
            "sys_platform": "linux", "platform_machine": plat.machine, "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix"}


def problems() -> list[str]:
    """Every way the committed lock disagrees with pyproject.toml, one line each ([] when it agrees)."""
    from packaging.requirements import Requirement

    pyproject = _pyproject()
    digest = inputs_digest(pyproject)
    project = pyproject["project"]
    out: list[str] = []
    for plat in PLATFORMS:
        env = _marker_env(plat)
        full_pins: dict[str, tuple[str, int]] = {}
        for device in (False, True):
            path = lock_path(plat, device)
            name = path.relative_to(PROJECT_ROOT)
            if not path.exists():
                out.append(f"{name}: missing (run `make lock`)")
                continue
            header = next((ln for ln in path.read_text().splitlines() if ln.startswith(INPUTS_LINE)), "")
            if header.removeprefix(INPUTS_LINE).strip() != digest:
                out.append(f"{name}: resolved from another pyproject.toml (dependencies changed: run `make lock`)")
            pins = read_pins(path)
            extras = list(DEVICE_EXTRAS) if device else sorted(project["optional-dependencies"])
            wanted = list(project["dependencies"])
            for extra in extras:
                wanted += project["optional-dependencies"][extra]
            for spec in wanted:
                req = Requirement(spec)
                if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                    continue
                key = re.sub(r"[-_.]+", "-", req.name).lower()
                if key not in pins:
                    out.append(f"{name}: {req.name} is required by pyproject.toml but not locked")
                elif not req.specifier.contains(pins[key][0], prereleases=True):
                    out.append(f"{name}: {req.name}=={pins[key][0]} does not satisfy '{req.specifier}'")
            out += [f"{name}: {pkg}=={v} has no hash" for pkg, (v, n) in pins.items() if n == 0]
            if device:
                out += [f"{name}: {pkg}=={v} but {lock_path(plat).name} pins {full_pins[pkg][0]}"
                        for pkg, (v, _) in pins.items() if pkg in full_pins and full_pins[pkg][0] != v]
            else:
                full_pins = pins
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.devtools.lockfiles", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("write", help="resolve every platform's lock with uv (needs the package index)")
    sub.add_parser("check", help="fail when pyproject.toml and the lock disagree (offline)")
    p = sub.add_parser("path", help="print the lock file for this machine")
    p.add_argument("--device", action="store_true", help="the runtime-only lock that a van installs")
    args = parser.parse_args(argv)
    if args.cmd == "write":
        write()
    elif args.cmd == "path":
        print(lock_path(this_platform(), args.device))
    else:
        found = problems()
        for line in found:
            print(f"lock: {line}", file=sys.stderr)
        if found:
            return 1
        print(f"lock: {len(PLATFORMS) * 2} lock files agree with pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
