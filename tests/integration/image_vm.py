"""Boot the arm64 image in qemu-system-aarch64 (-M virt, UEFI, TCG, no display) for the image tests.

Network: QEMU user-mode networking with `restrict=on` (the guest reaches nothing outside), and only
`hostfwd` ports bound to 127.0.0.1 on this machine. The serial console (ttyAMA0: kernel, systemd, the
first-boot output) goes to a log file. The test image adds a root shell on a virtio console (hvc0) behind a
UNIX socket here, which the test uses as a technician's keyboard: it is in the test overlay only, never in
`make image`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

FIRMWARE_CODE = Path("/usr/share/AAVMF/AAVMF_CODE.fd")
FIRMWARE_VARS = Path("/usr/share/AAVMF/AAVMF_VARS.fd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vm:
    def __init__(self, image: Path, workdir: Path, forwards: dict[str, int], cpus: int = 2, memory_mib: int = 3072):
        """forwards: name -> guest TCP port; each gets a free 127.0.0.1 port on the host (self.ports[name])."""
        self.image, self.workdir = image, workdir
        self.ports = {name: free_port() for name in forwards}
        self.guest_ports = forwards
        self.cpus, self.memory = cpus, memory_mib
        self.console_log = workdir / "console.log"
        self.shell_sock = workdir / "shell.sock"
        self.qmp_sock = workdir / "qmp.sock"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def command(self) -> list[str]:
        # -cpu cortex-a76: the Raspberry Pi 5's core, so that XNNPACK picks the kernels it would pick there
        # (dot product, no SVE/i8mm), not those of QEMU's "max" CPU.
        vars_copy = self.workdir / "AAVMF_VARS.fd"
        if not vars_copy.exists():
            shutil.copy(FIRMWARE_VARS, vars_copy)
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{self.ports[n]}-:{p}" for n, p in self.guest_ports.items())
        return [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a76", "-smp", str(self.cpus),
            "-m", str(self.memory), "-accel", "tcg,thread=multi", "-nographic", "-nodefaults",
            "-drive", f"if=pflash,format=raw,readonly=on,file={FIRMWARE_CODE}",
            "-drive", f"if=pflash,format=raw,file={vars_copy}",
            "-drive", f"if=none,id=disk,format=raw,file={self.image},cache=unsafe",
            "-device", "virtio-blk-pci,drive=disk",
            "-netdev", f"user,id=net0,restrict=on,{fwd}",
            # romfile= : no iPXE option ROM (the guest boots from disk; Debian ships it in ipxe-qemu).
            "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.console_log}",
            "-chardev", f"socket,id=shell,path={self.shell_sock},server=on,wait=off",
            "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=shell",
            "-qmp", f"unix:{self.qmp_sock},server=on,wait=off",
        ]

    def start(self) -> None:
        for p in (self.shell_sock, self.qmp_sock):
            p.unlink(missing_ok=True)
        self.console_log.write_text("")
        self.started = time.monotonic()
        with open(self.workdir / "qemu.log", "wb") as qemu_log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=qemu_log,
                                         stderr=subprocess.STDOUT)

    def console(self) -> str:
        return self.console_log.read_text(errors="replace")

    def wait_console(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.console())
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"qemu exited ({self.proc.returncode}) waiting for {pattern!r}")
            time.sleep(2)
        raise AssertionError(f"no {pattern!r} on the console within {timeout:.0f} s:\n{self.console()[-4000:]}")

    def qmp(self, command: str) -> dict:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.qmp_sock))
            f = s.makefile("rw")
            f.readline()
            f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
            f.flush()
            f.readline()
            f.write(json.dumps({"execute": command}) + "\n")
            f.flush()
            return json.loads(f.readline())

    def poweroff(self, timeout: float = 300) -> None:
        """The ACPI power button (systemd shuts down cleanly), then wait for QEMU to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.qmp("system_powerdown")
            self.proc.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class Shell:
    """A root shell on the guest's hvc0 (test overlay only): run a command, get its output and status."""

    def __init__(self, sock: Path, timeout: float = 600):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(str(sock))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        self.buf = b""
        self.n = 0
        # A getty may not be up yet: poke until the autologin shell answers.
        while True:
            try:
                self.run("stty -echo; PS1= PS2=; export TERM=dumb PAGER=cat SYSTEMD_PAGER= SYSTEMD_COLORS=0",
                         timeout=20)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                self.s.sendall(b"\n")

    def _read_until(self, marker: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {marker!r} from the guest shell within {timeout:.0f} s")
            self.s.settimeout(min(left, 5))
            try:
                chunk = self.s.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionError("guest shell closed")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def run(self, cmd: str, timeout: float = 600, check: bool = True) -> str:
        """Run cmd; the markers are split in the typed text so that an echo of it cannot match."""
        self.n += 1
        begin, end = f"__BEGIN_{self.n}__", f"__END_{self.n}__"
        half = len(begin) // 2
        # One line: a prompt printed between two lines would land in the output.
        line = f"echo '{begin[:half]}''{begin[half:]}'; {cmd}; echo \"{end[:half]}\"\"{end[half:]} $?\"\n"
        self.s.sendall(line.encode())
        self._read_until(begin.encode(), timeout)
        out = self._read_until(end.encode(), timeout).decode(errors="replace")
        status = int(self._read_until(b"\n", timeout).decode().strip() or "0")
        out = out.replace("\r", "").strip("\n")
        if check and status != 0:
            raise AssertionError(f"guest: `{cmd}` exited {status}:\n{out[-3000:]}")
        return out

    def write_file(self, path: str, data: bytes, mode: str = "0644") -> None:
        import base64

        b64 = base64.b64encode(data).decode()
        self.run(f"rm -f {path}.b64")
        for i in range(0, len(b64), 3000):
            self.run(f"printf %s '{b64[i:i + 3000]}' >> {path}.b64")
        self.run(f"base64 -d {path}.b64 > {path} && rm {path}.b64 && chmod {mode} {path}")


def env_minus_proxy() -> dict[str, str]:
    """Connections to 127.0.0.1 must not go through a proxy."""
    env = dict(os.environ)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env
