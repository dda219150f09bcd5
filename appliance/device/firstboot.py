"""First boot of a flashed image: provision from one file on the boot partition, then self-test.

A technician writes the image, copies `provision.toml` (and the files it names) into the `appliance/`
folder of the boot partition (FAT, readable on any laptop), and powers the device. On boot,
`appliance-firstboot.service` (before `appliance.service`) runs this as root:

1. `provision.toml` present: `appliance provision` with its values, officers added, a replayed clip copied
   if the camera source is `replay:FILE`; then the file and every input it named are overwritten and deleted
   (it holds officers' PINs), and the public results are written to `appliance/out/` for the control room:
   the CSR, the public keys and fingerprints (`provision.txt`).
2. `device.crt` present (the control room signed `out/DEVICE.csr`): installed with `appliance provision
   --cert` (and `ca.crt` if given there), then removed from the boot partition.
3. After either: `appliance selftest`, printed on the console and written to `appliance/out/selftest.txt`.

`appliance.service` starts after this unit, and only once `/etc/appliance/appliance.toml` exists.
The self-test result does not stop the service: a van without its certificate yet still runs degraded
("broker not up") and keeps everything in its outbox; the technician reads the verdicts.

    python -m appliance.device.firstboot --boot-dir /boot/efi/appliance
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6)
    import tomli as tomllib  # type: ignore[no-redef]

from appliance.config import DEFAULT_CONFIG_PATH
from appliance.device.provision import SERVICE_USER

APPLIANCE = os.environ.get("APPLIANCE_CLI", "/usr/local/bin/appliance")
DATA_DIR = Path("/var/lib/appliance")  # provision's default; --data-dir for tests
REQUIRED = ("device_id", "broker", "control_room_key")
KNOWN = {*REQUIRED, "ca", "source", "time_servers", "console_bind", "key_provider", "officers"}


class FirstBootError(Exception):
    pass


def say(msg: str) -> None:
    print(f"appliance-firstboot: {msg}", flush=True)


def run(cmd: list[str], stdin: str | None = None, user: str | None = None) -> str:
    """Run a command, echo its output to the console, fail with its last lines."""
    if user is not None and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        raise FirstBootError(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{out[-3000:]}")
    return out


def shred(path: Path) -> None:
    """Overwrite then delete: FAT rewrites a file's clusters in place, so the PINs do not linger on the card."""
    if not path.is_file():
        return
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def read_provision_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FirstBootError(f"{path}: not a readable TOML file ({e})") from None
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        raise FirstBootError(f"{path}: missing {', '.join(missing)} (see provision.toml.example)")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise FirstBootError(f"{path}: unknown keys {', '.join(unknown)} (see provision.toml.example)")
    for o in data.get("officers", []):
        if not isinstance(o, dict) or not o.get("id") or not o.get("pin"):
            raise FirstBootError(f"{path}: every [[officers]] entry needs an id and a pin")
    return data


def _input_file(boot: Path, name: str, what: str) -> Path:
    p = boot / name
    if not p.is_file():
        raise FirstBootError(f"{what} '{name}' is not in {boot}")
    return p


def provision_from(boot: Path, config: Path, out: Path, data_dir: Path = DATA_DIR) -> list[Path]:
    """Step 1. Returns the input files to shred once everything has succeeded."""
    spec = boot / "provision.toml"
    data = read_provision_file(spec)
    inputs = [spec]
    with tempfile.TemporaryDirectory(prefix="firstboot-") as tmp:
        # The inputs are copied off the FAT partition first: provision checks file modes and owners there.
        crk = Path(tmp) / "control-room.ed25519.pub"
        src = _input_file(boot, data["control_room_key"], "control_room_key")
        shutil.copy(src, crk)
        inputs.append(src)
        cmd = [APPLIANCE, "provision", "--device-id", data["device_id"], "--broker", data["broker"],
               "--control-room-key", str(crk), "--config", str(config), "--data-dir", str(data_dir)]
        if data.get("ca"):
            ca = _input_file(boot, data["ca"], "ca")
            shutil.copy(ca, Path(tmp) / "ca.crt")
            cmd += ["--ca", str(Path(tmp) / "ca.crt")]
            inputs.append(ca)
        for server in data.get("time_servers", []):
            cmd += ["--time-server", server]
        if data.get("console_bind"):
            cmd += ["--console-bind", data["console_bind"]]
        if data.get("key_provider"):
            cmd += ["--key-provider", data["key_provider"]]
        source = data.get("source")
        replay = None
        if source and source.startswith("replay:"):
            # A clip on the boot partition stands in for the camera (bench tests, training, the image test).
            replay = _input_file(boot, source.removeprefix("replay:"), "replay clip")
            dest = data_dir / "replay" / replay.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(replay, dest)
            source = str(dest)
            inputs.append(replay)
        if source:
            cmd += ["--source", source]
        say(f"provisioning {data['device_id']} (broker {data['broker']})")
        result = run(cmd)
        print(result, flush=True)
    if replay is not None:
        # Round and round, and every frame looked at however slow the machine (a bench test, an emulator):
        # unpaced, so a slow device sees each frame of the clip instead of skipping to the newest one.
        text = tomllib.loads(config.read_text())
        text.setdefault("capture", {}).update({"loop": True, "pace": False})
        config.write_text(tomli_w.dumps(text))
    _chown_service(data_dir / "replay")
    for o in data.get("officers", []):
        run([APPLIANCE, "officers", "--config", str(config), "add", o["id"], "--name", o.get("name") or o["id"],
             "--pin-stdin"], stdin=o["pin"] + "\n", user=_service_user())
        say(f"officer {o['id']} added")
    # Public material for the control room: the CSR to sign and what provision printed (keys, fingerprints).
    out.mkdir(exist_ok=True)
    (out / "provision.txt").write_text(result + "\n")
    csr = data_dir / "tls" / "device.csr"
    if csr.is_file():
        shutil.copy(csr, out / f"{data['device_id']}.csr")
        say(f"certificate request written to the boot partition: appliance/out/{data['device_id']}.csr")
    return inputs


def install_certificate(boot: Path, config: Path, data_dir: Path = DATA_DIR) -> list[Path]:
    """Step 2: the signed certificate the control room returned, through provision (it checks it)."""
    cfg = tomllib.loads(config.read_text())
    device_id, broker = cfg["device"]["id"], cfg["mqtt"]["broker"]
    cert = boot / "device.crt"
    inputs = [cert]
    with tempfile.TemporaryDirectory(prefix="firstboot-") as tmp:
        shutil.copy(cert, Path(tmp) / "device.crt")
        cmd = [APPLIANCE, "provision", "--device-id", device_id, "--broker", broker, "--config", str(config),
               "--control-room-key", str(data_dir / "keys" / "control-room.ed25519.pub"),
               "--cert", str(Path(tmp) / "device.crt")]
        if (boot / "ca.crt").is_file():
            shutil.copy(boot / "ca.crt", Path(tmp) / "ca.crt")
            cmd += ["--ca", str(Path(tmp) / "ca.crt")]
            inputs.append(boot / "ca.crt")
        say(f"installing the client certificate for {device_id}")
        print(run(cmd), flush=True)
    return inputs


def _service_user() -> str | None:
    try:
        pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER
    except KeyError:
        return None


def _chown_service(path: Path) -> None:
    user = _service_user()
    if user is None or os.geteuid() != 0 or not path.exists():
        return
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def selftest(config: Path, out: Path) -> bool:
    r = subprocess.run([APPLIANCE, "selftest", "--config", str(config)], capture_output=True, text=True)
    text = (r.stdout + r.stderr).strip()
    for line in text.splitlines():
        say(f"selftest: {line}")
    out.mkdir(exist_ok=True)
    (out / "selftest.txt").write_text(text + "\n")
    return r.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot-dir", type=Path, default=Path("/boot/efi/appliance"),
                    help="the appliance folder on the boot partition")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    boot, out = args.boot_dir, args.boot_dir / "out"
    done: list[Path] = []
    try:
        if (boot / "provision.toml").is_file():
            done += provision_from(boot, args.config, out, args.data_dir)
        if (boot / "device.crt").is_file():
            if not args.config.is_file():
                raise FirstBootError("device.crt is on the boot partition but this device is not provisioned yet")
            done += install_certificate(boot, args.config, args.data_dir)
    except FirstBootError as e:
        # The inputs stay where they are so the technician can fix the file and boot again; the reason is
        # on the console and beside them.
        say(f"FAILED: {e}")
        out.mkdir(exist_ok=True)
        (out / "firstboot-error.txt").write_text(f"{e}\n")
        return 1
    if not done:
        say(f"nothing to do in {boot}")
        return 0
    for p in done:
        shred(p)
    (out / "firstboot-error.txt").unlink(missing_ok=True)
    say(f"removed {', '.join(p.name for p in done)} from the boot partition")
    ok = selftest(args.config, out)
    say("self-test passed" if ok else "self-test reported failures (appliance/out/selftest.txt); starting anyway")
    return 0


if __name__ == "__main__":
    sys.exit(main())
