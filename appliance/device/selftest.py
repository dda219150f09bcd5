"""`appliance selftest`: is this device fit to go out in a van? One check per part, each pass/fail/skip + reason.

Checks (in order): camera, models (sha256), interpreter, database key, watchlist, broker (TLS with the
client certificate), clock sync, free disk, CPU temperature. A check never raises: an unexpected error is
a failure with its one-line reason. `skip` means "not applicable here" (no thermal sensor, no watchlist
received yet), never "broken".

The self-test must not disturb a running daemon or the data it owns: databases are checked on a private
copy (opening the live file as root would leave root-owned -wal/-shm files the daemon cannot open), and the
broker check connects with its own client id, so the daemon's session is not taken over.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from appliance.config import Config
from appliance.device.types import CheckRecord, SelftestReport, TimeServerReading
from appliance.errors import ApplianceError
from appliance.sync.broker_url import parse_broker_url
from appliance.timeutil import now_iso

PASS, FAIL, SKIP = "pass", "fail", "skip"

MIN_FREE_BYTES = 1 << 30  # 1 GiB: room for the alerts' crops, the outbox and a full watchlist bundle
MIN_FREE_FRACTION = 0.05
MAX_CPU_TEMP_C = 80.0  # a Pi 5 starts throttling at 80-85 °C; a Jetson Orin well above, but 80 is a warning sign
MAX_CLOCK_OFFSET_S = 1.0
NTP_TIMEOUT_S = 2.0
CAMERA_TIMEOUT_S = 15.0
BROKER_TIMEOUT_S = 10.0


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | skip
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAIL


class _Fail(Exception):
    """Raised inside a check to fail it with a one-line reason."""


class _Skip(Exception):
    """Raised inside a check to skip it with a one-line reason."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --- camera ------------------------------------------------------------------------------------------------

def check_camera(config: Config) -> tuple[str, dict]:
    from appliance.capture import open_source  # imported here: picamera2 etc. only when checked

    source = config.capture.source
    camera = open_source(source, config.capture, loop=False, pace=False)
    result: dict[str, Any] = {}

    def grab() -> None:
        try:
            camera.open()
            result["frame"] = camera.read()
        except BaseException as e:  # reported by the caller, in one line
            result["error"] = e

    t = threading.Thread(target=grab, name="selftest-camera", daemon=True)
    t.start()
    t.join(CAMERA_TIMEOUT_S)
    try:
        if t.is_alive():
            raise _Fail(f"no frame from {camera.name} within {CAMERA_TIMEOUT_S:.0f} s")
        if "error" in result:
            raise _Fail(f"{camera.name}: {_one_line(result['error'])}")
        frame = result.get("frame")
        if frame is None:
            raise _Fail(f"{camera.name} opened but delivered no frame")
    finally:
        if not t.is_alive():
            camera.close()
    return f"read a {frame.width}x{frame.height} frame from {camera.name}", {
        "source": camera.name, "width": frame.width, "height": frame.height,
    }


# --- models and interpreter -----------------------------------------------------------------------------

def _configured_models(config: Config):
    from appliance.runtime.manifest import load_manifest

    manifest = load_manifest(config.models.dir)
    wanted = [(config.models.detector, "detector"), (config.models.embedder, "embedder")]
    if config.models.landmarks:
        wanted.insert(1, (config.models.landmarks, "landmarks"))
    return manifest, [manifest.get(model_id, role) for model_id, role in wanted]


def check_models(config: Config) -> tuple[str, dict]:
    from appliance.runtime.manifest import verify_model

    manifest, specs = _configured_models(config)
    root = manifest.path.parent
    for spec in specs:
        verify_model(spec, root)
    return f"{len(specs)} model files match their sha256 ({', '.join(s.id for s in specs)})", {
        "manifest": str(manifest.path), "models": {s.id: s.sha256 for s in specs},
    }


def check_interpreter(config: Config) -> tuple[str, dict]:
    from appliance.runtime.interpreter import RuntimeOptions
    from appliance.runtime.loader import load_model

    manifest, specs = _configured_models(config)
    options = RuntimeOptions(threads=config.runtime.threads, xnnpack=config.runtime.xnnpack)
    timings: dict[str, float] = {}
    runtimes: dict[str, str] = {}  # model id -> "ai-edge-litert 2.3.0" / "onnxruntime 1.23.2"
    for spec in specs:
        model = load_model(spec, manifest.path.parent, options)
        runtimes[spec.id] = f"{model.backend} {model.version}"
        inputs = [np.zeros(t.shape, dtype=t.dtype) for t in model.inputs]
        t0 = time.perf_counter()
        outputs = model.run(*inputs)
        timings[spec.id] = round((time.perf_counter() - t0) * 1000, 2)
        for out in outputs:
            if np.issubdtype(out.dtype, np.floating) and not np.all(np.isfinite(out)):
                raise _Fail(f"{spec.id} produced non-finite output on a zero input")
    ms = ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
    used = sorted(set(runtimes.values()))
    # "backend" (the first runtime) is kept for readers of the earlier JSON; "runtimes" names each model's.
    return f"{' and '.join(used)} ran each model once on a zero input ({ms})", {
        "backend": runtimes[specs[0].id].split(" ")[0], "runtimes": runtimes, "ms": timings,
    }


def check_pipeline(config: Config) -> tuple[str, dict]:
    """The libraries, model files and settings match those the shipped threshold was calibrated on."""
    from appliance.vision.fingerprint import pipeline_fingerprint, pipeline_warning

    manifest, _ = _configured_models(config)
    embedder = manifest.get(config.models.embedder, "embedder")
    cal = embedder.calibration
    if cal is None:
        raise _Skip(f"{embedder.id} has no calibrated threshold (matcher.threshold is set by hand)")
    differences = pipeline_warning(config, embedder)
    if differences:
        raise _Fail(f"threshold {cal.threshold} of {embedder.id} was calibrated on another pipeline: "
                    f"{'; '.join(differences)}; install from the lock or recalibrate (docs/install.md)")
    running = pipeline_fingerprint(config)
    arch = (cal.evidence.get("arch") or {}).get(running["machine"]) if isinstance(cal.evidence, dict) else None
    on = (f"; on {running['machine']} by the manifest's {running['machine']} evidence (pair scores within "
          f"{arch.get('pair_score_max_abs_diff')} of {arch.get('reference_machine')}'s, none across the threshold)"
          if arch else "")
    return (f"threshold {cal.threshold} was calibrated on this pipeline (numpy {running['numpy']}, OpenCV "
            f"{running['opencv']}, {running['interpreter']}, model files by sha256, same settings){on}"), running


# --- storage -------------------------------------------------------------------------------------------------

def _snapshot(db_path: Path, into: Path) -> Path:
    """Copy a database and its WAL into `into` (same file name, so the key label is the same)."""
    copy = into / db_path.name
    shutil.copyfile(db_path, copy)
    for suffix in ("-wal",):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            shutil.copyfile(side, copy.with_name(copy.name + suffix))
    return copy


def check_database_key(config: Config) -> tuple[str, dict]:
    from appliance.storage import DATABASES, db_path, key_provider_from_config, open_db

    provider = key_provider_from_config(config)
    data_dir = config.device.data_dir
    keys = {label: provider.has_key(label) for label in DATABASES}
    if not any(keys.values()):
        raise _Fail(f"no database key ({provider.describe(DATABASES[0])}): run `appliance provision`")
    for label, present in keys.items():
        if present:
            provider.key(label)  # raises on a loose mode (not 0600), a malformed key, an unreadable OTP
    opened = []
    with tempfile.TemporaryDirectory(prefix="appliance-selftest-") as tmp:
        for label in DATABASES:
            path = db_path(data_dir, label)
            if path.exists() and path.stat().st_size > 0:
                db = open_db(_snapshot(path, Path(tmp)), provider, create=False)
                db.close()
                opened.append(path.name)
    where = provider.describe(DATABASES[0]) if keys[DATABASES[0]] else provider.describe(DATABASES[-1])
    present = [label for label, ok in keys.items() if ok]
    text = f"keys for {', '.join(present)} ({where}"
    text += f"); {', '.join(opened)} decrypt with them" if opened else "); no database created yet"
    return text, {"provider": config.storage.key_provider, "keys": keys, "opened": opened}


def check_watchlist(config: Config) -> tuple[str, dict]:
    from appliance.storage.databases import WATCHLIST, db_path

    path = db_path(config.device.data_dir, WATCHLIST)
    if not path.exists():
        raise _Skip("no watchlist received yet (the control room sends it over MQTT)")
    try:
        from appliance.storage import key_provider_from_config
        from appliance.watchlist.store import WatchlistStore
    except ImportError as e:  # pragma: no cover - only in a partial install
        raise _Skip(f"watchlist support is not installed ({e})") from None
    provider = key_provider_from_config(config)
    with tempfile.TemporaryDirectory(prefix="appliance-selftest-") as tmp:
        _snapshot(path, Path(tmp))
        store = WatchlistStore.open(Path(tmp), provider, create=False)
        try:
            store.check_integrity()
            status = store.status()
        finally:
            store.close()
    if status.get("watchlist_id") is None:
        raise _Skip("no watchlist applied yet (the control room sends it over MQTT)")
    name = f"watchlist {status['watchlist_id']} v{status['version']}"
    details = {k: status.get(k) for k in ("watchlist_id", "version", "subjects", "expires_at", "model_id")}
    if status["expired"]:
        raise _Fail(f"{name} expired at {status['expires_at']}: the device will not match until a new one arrives")
    if status.get("model_id") != config.models.embedder:
        raise _Fail(f"{name} was built for model {status.get('model_id')}, this device runs {config.models.embedder}")
    if not status.get("subjects"):
        raise _Fail(f"{name} holds no subjects")
    return f"{name}: {status['subjects']} subjects, valid, expires {status['expires_at']}", details


# --- broker --------------------------------------------------------------------------------------------------

def check_broker(config: Config) -> tuple[str, dict]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    m = config.mqtt
    try:
        broker = parse_broker_url(m.broker)
    except ApplianceError as e:
        raise _Fail(str(e)) from None
    host, port = broker.host, broker.port
    if not broker.tls:
        raise _Fail(f"broker {m.broker} is not mqtts://: the device must use TLS with its client certificate")
    for what, path in (("client certificate", m.cert_file), ("client key", m.key_file), ("CA certificate", m.ca_file)):
        if path is None:
            raise _Fail(f"no {what} configured ([mqtt] in the config): provision, then install the signed certificate")
        if not Path(path).is_file():
            hint = " (sign the CSR from `appliance provision` and pass --cert)" if what == "client certificate" else ""
            raise _Fail(f"{what} {path} not found{hint}")
    # The broker gives a van certificate one client id, its CN (issue 12), so this connection IS the van's
    # session: resume it (never clean start, same expiry) and acknowledge nothing, so whatever is queued for
    # the van (commands, bundle chunks) stays queued for the daemon, which reconnects by itself.
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=config.device.id, protocol=mqtt.MQTTv5, manual_ack=True,
    )
    try:
        client.tls_set(ca_certs=str(m.ca_file), certfile=str(m.cert_file), keyfile=str(m.key_file),
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise _Fail(f"cannot load the TLS files: {_one_line(e)}") from None
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c, _u, _flags, reason_code, _props) -> None:
        outcome["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    t0 = time.monotonic()
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = m.session_expiry_s
    props.ReceiveMaximum = 1
    try:
        client.connect(host, port, keepalive=10, clean_start=False, properties=props)
    except ssl.SSLError as e:
        raise _Fail(f"TLS handshake with {host}:{port} failed: {_one_line(e)}") from None
    except OSError as e:  # includes TimeoutError
        raise _Fail(f"cannot reach broker {host}:{port}: {_one_line(e)}") from None
    client.loop_start()
    try:
        if not done.wait(BROKER_TIMEOUT_S):
            raise _Fail(f"no CONNACK from {host}:{port} within {BROKER_TIMEOUT_S:.0f} s (client certificate refused?)")
        rc = outcome["rc"]
        if rc.is_failure:
            raise _Fail(f"broker {host}:{port} refused the connection: {rc}")
        ms = (time.monotonic() - t0) * 1000
    finally:
        client.disconnect()
        client.loop_stop()
    return f"connected to {host}:{port} over TLS with the client certificate in {ms:.0f} ms", {
        "host": host, "port": port,
    }


# --- clock ---------------------------------------------------------------------------------------------------

class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux); only `status` and `maxerror` are read.
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def kernel_clock_synchronised() -> bool | None:
    """What the kernel says (adjtimex, read-only): True/False, or None where it cannot be asked.

    An NTP daemon (chrony, systemd-timesyncd) clears STA_UNSYNC once it disciplines the clock; this is
    what `timedatectl`'s NTPSynchronized reports too.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    tx = _Timex()  # modes = 0: read only
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return state != TIME_ERROR and not (tx.status & STA_UNSYNC)


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def local_sync_status() -> tuple[bool, str, dict]:
    """Does an NTP daemon on this device say it keeps the clock synchronised? (synced, how, details).

    Asked in turn: systemd (needs a running systemd), chrony (with its measured offset), the kernel (an NTP
    daemon that disciplines the clock clears STA_UNSYNC).
    """
    out = _run(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    if out is not None and out.strip() == "yes":
        return True, "timedatectl NTPSynchronized=yes", {"source": "timedatectl"}
    out = _run(["chronyc", "-n", "tracking"])
    if out is not None:
        leap = re.search(r"Leap status\s*:\s*(.+)", out)
        offset = re.search(r"System time\s*:\s*([0-9.]+) seconds (fast|slow)", out)
        ref = re.search(r"Reference ID\s*:\s*(\S+)\s*\(([^)]*)\)", out)
        details: dict[str, Any] = {"source": "chronyc", "reference": ref.group(2) if ref else None}
        # 7F7F0101 is chrony's `local` reference: serving its own clock, synchronised to nothing.
        if leap and leap.group(1).strip() == "Normal" and not (ref and ref.group(1) == "7F7F0101"):
            off = float(offset.group(1)) if offset else 0.0
            details["offset_s"] = off
            if off > MAX_CLOCK_OFFSET_S:
                raise _Fail(f"chrony is synchronised but the clock is still {off:.3f} s off (slewing)")
            return True, f"chrony synchronised to {details['reference']} (offset {off * 1000:.1f} ms)", details
    synced = kernel_clock_synchronised()
    if synced:
        return True, "kernel adjtimex: STA_UNSYNC clear", {"source": "adjtimex"}
    why = "the kernel clock is not synchronised" if synced is False else "cannot tell whether the clock is synchronised"
    return False, f"{why}: no NTP daemon reports sync (chronyc tracking, timedatectl)", {"source": "none"}


def split_server(server: str) -> tuple[str, int]:
    """'host', 'host:port' or '[v6addr]:port' -> (host, port); NTP's port 123 by default."""
    parts = urlsplit(f"ntp://{server}")
    return parts.hostname or server, parts.port or 123


def measure_time_servers(servers: list[str], timeout_s: float = NTP_TIMEOUT_S) -> list[TimeServerReading]:
    """Ask each NTP server for the time (one SNTP exchange): how far this clock is from it, or why not.

    offset_s > 0 means the server is ahead (this clock is slow). A server that is not synchronised itself
    (stratum 0/16 or leap 3, "alarm") is reported as an error: its time is no reference.
    """
    import ntplib  # small, pure Python; only the self-test needs it

    client = ntplib.NTPClient()
    results: list[TimeServerReading] = []
    for server in servers:
        host, port = split_server(server)
        try:
            r = client.request(host, port=port, version=4, timeout=timeout_s)
        except (ntplib.NTPException, OSError) as e:
            results.append({"server": server, "error": _one_line(e) or type(e).__name__})
            continue
        if r.leap == 3 or not 1 <= r.stratum <= 15:
            results.append({"server": server, "error": f"not synchronised itself (stratum {r.stratum}, leap {r.leap})"})
            continue
        results.append({"server": server, "offset_s": round(r.offset, 6), "delay_s": round(r.delay, 6),
                        "stratum": r.stratum})
    return results


def check_clock(config: Config) -> tuple[str, dict]:
    """Is the clock right? Measured against the configured time servers, and asked of the local NTP daemon.

    Alerts, decisions and deployments carry times, the audit chain is ordered by them, a watchlist stops at
    its expiry and TLS certificates have validity windows. A measured offset within 1 s of the force's time
    servers passes even where no daemon disciplines the clock (the reason says so: it will drift); with no
    time servers configured, the check relies on the daemon alone.
    """
    now = datetime.now(timezone.utc)
    if now.year < 2025:
        raise _Fail(f"the clock says {now:%Y-%m-%d}: it has never been set (no RTC battery, no NTP yet)")
    synced, how, details = local_sync_status()
    measured = measure_time_servers(config.device.time_servers) if config.device.time_servers else []
    answered = [m for m in measured if "offset_s" in m]
    details = {**details, "synchronised": synced, "time_servers": measured}
    if answered:
        offsets = sorted(m["offset_s"] for m in answered)
        offset = offsets[len(offsets) // 2]  # the median: one wrong server cannot pass or fail the check
        nearest = min(answered, key=lambda m: abs(m["offset_s"] - offset))
        where = f"{nearest['server']} (stratum {nearest['stratum']})"
        if len(answered) > 1:
            where += f" and {len(answered) - 1} other server(s)"
        if abs(offset) > MAX_CLOCK_OFFSET_S:
            direction = "slow" if offset > 0 else "fast"
            raise _Fail(f"the clock is {abs(offset):.3f} s {direction} against {where}; alerts and the audit "
                        f"chain need it within {MAX_CLOCK_OFFSET_S:.0f} s: check chrony (chronyc sources -v)")
        details["offset_s"] = offset
        text = f"within {abs(offset) * 1000:.1f} ms of {where}"
        if synced:
            return f"{text}; {how}", details
        return (f"{text}; no NTP daemon disciplines it here, so it will drift: install chrony with "
                "firmware-config/chrony/appliance.conf"), details
    if synced:
        if measured:  # the daemon syncs from somewhere, but the servers in the config did not answer
            return f"synchronised ({how}); no configured time server answered", details
        return f"synchronised ({how})", details
    if measured:
        tried = "; ".join(f"{m['server']}: {m['error']}" for m in measured)
        raise _Fail(f"no time server answered ({tried}) and {how}")
    raise _Fail(f"{how}; no time servers in the config ([device] time_servers) to measure against; alerts and "
                "the audit chain need a correct clock: install chrony with firmware-config/chrony/appliance.conf")


# --- disk and temperature ----------------------------------------------------------------------------------

def check_disk(config: Config) -> tuple[str, dict]:
    path = config.device.data_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    gib = usage.free / (1 << 30)
    details = {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}
    text = f"{gib:.1f} GiB free of {usage.total / (1 << 30):.1f} GiB on {path}"
    if usage.free < MIN_FREE_BYTES or usage.free < MIN_FREE_FRACTION * usage.total:
        raise _Fail(f"only {text} (need at least 1 GiB and 5%)")
    return text, details


def read_cpu_temperatures(root: Path = Path("/sys/class/thermal")) -> dict[str, float]:
    temps: dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            milli = int((zone / "temp").read_text().strip())
            kind = (zone / "type").read_text().strip() if (zone / "type").exists() else zone.name
        except (OSError, ValueError):
            continue
        temps[f"{zone.name}:{kind}"] = milli / 1000.0
    return temps


def check_temperature(_config: Config, root: Path = Path("/sys/class/thermal")) -> tuple[str, dict]:
    temps = read_cpu_temperatures(root)
    if not temps:
        raise _Skip(f"no readable thermal zone under {root} (not a Pi or Jetson, or a VM)")
    hottest = max(temps, key=temps.__getitem__)
    value = temps[hottest]
    text = f"{value:.1f} °C ({hottest.split(':', 1)[1]})"
    if value >= MAX_CPU_TEMP_C:
        raise _Fail(f"{text} is at or above {MAX_CPU_TEMP_C:.0f} °C: it will throttle; check the cooling")
    return text, {"celsius": temps}


# --- running them ----------------------------------------------------------------------------------------

CHECKS: list[tuple[str, Callable[[Config], tuple[str, dict]]]] = [
    ("camera", check_camera),
    ("models", check_models),
    ("interpreter", check_interpreter),
    ("pipeline", check_pipeline),
    ("database_key", check_database_key),
    ("watchlist", check_watchlist),
    ("broker", check_broker),
    ("clock", check_clock),
    ("disk", check_disk),
    ("temperature", check_temperature),
]
CHECK_NAMES = [name for name, _ in CHECKS]


def run_check(name: str, fn: Callable[[Config], tuple[str, dict]], config: Config) -> CheckResult:
    t0 = time.monotonic()
    try:
        reason, details = fn(config)
        status = PASS
    except _Skip as e:
        status, reason, details = SKIP, str(e), {}
    except _Fail as e:
        status, reason, details = FAIL, str(e), {}
    except ApplianceError as e:
        status, reason, details = FAIL, _one_line(e), {}
    except Exception as e:  # a check must never take the self-test down; say what broke, in one line
        status, reason, details = FAIL, f"{type(e).__name__}: {_one_line(e)}", {}
    return CheckResult(name, status, reason, details, round(time.monotonic() - t0, 3))


def run_selftest(config: Config, only: list[str] | None = None) -> list[CheckResult]:
    unknown = set(only or []) - set(CHECK_NAMES)
    if unknown:
        raise ApplianceError(f"unknown check(s) {', '.join(sorted(unknown))}; known: {', '.join(CHECK_NAMES)}")
    return [run_check(name, fn, config) for name, fn in CHECKS if not only or name in only]


def report(results: list[CheckResult], config: Config, config_path: Path | None) -> SelftestReport:
    return {
        "schema": "selftest/1",
        "device": config.device.id,
        "config": str(config_path) if config_path else None,
        "time": now_iso(),
        "ok": not any(r.failed for r in results),
        "failed": [r.name for r in results if r.failed],
        "checks": [CheckRecord(**asdict(r)) for r in results],
    }
