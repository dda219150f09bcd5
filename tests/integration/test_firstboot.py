"""First boot of a flashed image (appliance.device.firstboot), run here against temporary folders: the
provisioning file on the "boot partition" provisions the device, adds the officer, copies the replay clip,
and is shredded with its inputs; the CSR comes out; the signed certificate going back in is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance.config import tomllib
from appliance.paths import shared_data_dir
from appliance.sync.local_broker import make_pki

CLI = str(Path(sys.executable).parent / "appliance")


def firstboot(boot: Path, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.device.firstboot", "--boot-dir", str(boot), "--config",
                           str(tmp / "appliance.toml"), "--data-dir", str(tmp / "data")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "APPLIANCE_CLI": CLI})


def test_provision_file_then_certificate(tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    subprocess.run([CLI, "keys", "generate", "control-room", "--out", str(tmp_path / "keys")], check=True,
                   capture_output=True)
    (boot / "control-room.ed25519.pub").write_bytes((tmp_path / "keys/control-room.ed25519.pub").read_bytes())
    (boot / "clip.jpg").write_bytes((shared_data_dir() / "crowd" / "13.jpg").read_bytes())
    pki = make_pki(tmp_path / "pki", [])
    (boot / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (boot / "provision.toml").write_text('device_id = "van-07"\nbroker = "mqtts://127.0.0.1:1"\n'
                                         'control_room_key = "control-room.ed25519.pub"\nca = "ca.crt"\n'
                                         'source = "replay:clip.jpg"\n\n[[officers]]\nid = "4711"\npin = "246810"\n')
    r = firstboot(boot, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in boot.iterdir()) == ["out"]  # the PINs' file and every input are gone
    assert sorted(p.name for p in (boot / "out").iterdir()) == ["provision.txt", "selftest.txt", "van-07.csr"]
    assert "PASS  camera" in (boot / "out" / "selftest.txt").read_text()
    config = tomllib.loads((tmp_path / "appliance.toml").read_text())
    assert config["capture"]["source"] == str(tmp_path / "data/replay/clip.jpg")
    listed = subprocess.run([CLI, "officers", "--config", str(tmp_path / "appliance.toml"), "list"],
                            capture_output=True, text=True, check=True).stdout
    assert "4711" in listed

    # The control room signs the CSR; the certificate goes back onto the boot partition.
    ext = tmp_path / "client.ext"
    ext.write_text("basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(boot / "out/van-07.csr"), "-CA", str(pki / "ca.crt"),
                    "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "30", "-extfile", str(ext),
                    "-out", str(boot / "device.crt")], check=True, capture_output=True)
    r = firstboot(boot, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (boot / "device.crt").exists()
    assert (tmp_path / "data/tls/device.crt").is_file()
    assert "installing the client certificate for van-07" in r.stdout


def test_a_bad_file_is_left_in_place_with_the_reason(tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "provision.toml").write_text('device_id = "van-07"\n')
    r = firstboot(boot, tmp_path)
    assert r.returncode == 1
    assert (boot / "provision.toml").exists()
    assert "missing broker, control_room_key" in (boot / "out" / "firstboot-error.txt").read_text()
