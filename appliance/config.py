"""The appliance's one configuration file (TOML), validated by Pydantic.

Every field has a description and bounds; an error names the field and the reason. Defaults serve a
Raspberry Pi 5 with a Camera Module 3 at 1080p. See docs/configuration.md for the full reference.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from appliance.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_CONFIG_PATH = Path("/etc/appliance/appliance.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RuntimeConfig(Section):
    threads: int = Field(2, ge=1, le=16, description="CPU threads per model interpreter (Pi 5 has 4 cores).")
    xnnpack: bool = Field(True, description="Use the XNNPACK CPU delegate (much faster for int8 models).")


class ModelsConfig(Section):
    dir: Path | None = Field(None, description="Folder with manifest.toml and the model files; default models/.")
    detector: str = Field("blazeface-full", description="Detector id from the manifest (blazeface-full or -short).")
    landmarks: str | None = Field(
        "face-mesh", description="Landmark model id used for 5-point alignment; empty to align on detector keypoints."
    )
    embedder: str = Field("mobilefacenet-int8", description="Embedder id from the manifest (int8 default, fp32).")
    embed_flip: bool = Field(
        True, description="Average the embeddings of the face and its mirror image (more accurate, 2x embed time). "
        "The watchlist must be enrolled with the same setting."
    )


class CaptureConfig(Section):
    source: str = Field(
        "picamera2:0",
        description="Camera URI: picamera2:N, v4l2:/dev/videoN, rtsp://..., http://..., gst:PIPELINE, "
        "a video file, or a folder of images.",
    )
    width: int = Field(1920, ge=160, le=7680, description="Requested frame width in pixels.")
    height: int = Field(1080, ge=120, le=4320, description="Requested frame height in pixels.")
    fps: float = Field(30.0, gt=0, le=120, description="Requested frame rate (replay paces to it).")
    reconnect_initial_s: float = Field(0.5, gt=0, le=60, description="First wait before reopening a lost camera.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Longest wait between reopen attempts.")
    loop: bool = Field(False, description="Replay sources (a video file or folder) start again at their end.")
    pace: bool = Field(
        True, description="Replay sources come at their frame rate like a live camera; off reads them flat out."
    )


class DetectorConfig(Section):
    score_threshold: float = Field(0.5, ge=0.05, le=0.99, description="Minimum face score after sigmoid.")
    nms_iou: float = Field(0.3, ge=0.05, le=0.9, description="IoU above which detections merge (weighted NMS).")
    tiles: Literal["auto"] | list[int] = Field(
        "auto",
        description="Tiling passes. 'auto': chosen per frame size so that a face of min_face_px is at least 15 "
        "model pixels in the finest pass, where BlazeFace finds it reliably (1280×720 and 1024 px: [1, 2, 3]; "
        "1600 px: [1, 2, 4]; 1920×1080: [1, 2, 5]). Or a fixed list: 1 = whole frame, N = an N×N grid of "
        "overlapping tiles; each pass costs N² detector runs (see docs/detection.md, make bench).",
    )
    min_face_px: float = Field(
        40.0, ge=8, le=1000,
        description="With tiles = 'auto': the narrowest face box (pixels) the passes must find reliably. The "
        "default is just under the 44-px box of a face with the gate's 18-px eye distance "
        "(quality.min_interocular_px).",
    )
    tile_overlap: float = Field(0.25, ge=0.0, le=0.5, description="Overlap between neighbouring tiles.")
    whole_frame_margin: float = Field(
        0.25, ge=0.0, le=1.0,
        description="Black border (share of the long edge) around the whole-frame pass: BlazeFace full range "
        "misses or under-scores a face that fills its window.",
    )
    max_faces: int = Field(128, ge=1, le=1000, description="At most this many faces per frame are kept.")
    tile_schedule: Literal["every_frame", "round_robin"] = Field(
        "every_frame",
        description="Live frames only. 'round_robin': the whole frame on every frame, the finer grids one per "
        "frame in turn (about half the detector cost with tiles [1, 2, 3]; small faces looked for every other "
        "frame). For a device that cannot keep up at camera rate: see docs/detection.md for the measured cost.",
    )


class QualityConfig(Section):
    min_interocular_px: float = Field(
        18.0, ge=4, le=500, description="Smallest eye distance (pixels) a face must have to be embedded."
    )
    min_sharpness: float = Field(
        25.0, ge=0, le=10000, description="Minimum variance of the Laplacian on the face (blur gate)."
    )
    max_yaw_deg: float = Field(40.0, ge=5, le=90, description="Largest head turn left/right, from landmarks.")
    max_pitch_deg: float = Field(35.0, ge=5, le=90, description="Largest head tilt up/down, from landmarks.")
    min_score: float = Field(0.6, ge=0.05, le=0.99, description="Minimum detector score to embed.")


class TrackerConfig(Section):
    iou_match: float = Field(0.3, ge=0.05, le=0.95, description="Minimum IoU to continue a track.")
    max_missed_frames: int = Field(15, ge=1, le=300, description="Frames a track survives unseen.")
    max_looks: int = Field(3, ge=1, le=20, description="Most embeddings per track (its best looks).")
    min_improvement: float = Field(
        1.15, ge=1.0, le=10.0,
        description="A new look is embedded only if its quality beats the best so far by this factor.",
    )


class MatcherConfig(Section):
    backend: Literal["numpy", "usearch", "faiss", "usearch-hnsw", "faiss-hnsw"] = Field(
        "numpy",
        description="1:N search back-end: numpy, usearch or faiss are exact; the -hnsw ones are approximate, "
        "only for galleries far beyond a watchlist (see docs/matching.md).",
    )
    threshold: float | None = Field(
        None, ge=-1.0, le=1.0,
        description="Score threshold for an alert, on the model's score scale (the adjusted score when the "
        "manifest normalises it, else the cosine); default is the calibrated one in the model manifest. "
        "Never below the manifest's floor.",
    )
    top_k: int = Field(5, ge=1, le=100, description="Candidates returned per face.")


class AlertConfig(Section):
    min_looks: int = Field(
        1, ge=1, le=10,
        description="Looks of one track that must match the same subject at or above the threshold before it "
        "alerts (see docs/accuracy.md for the measured effect).",
    )
    cooldown_s: float = Field(
        120.0, ge=0, le=86400, description="After an alert for a subject, its further matches are not re-alerted "
        "for this many seconds."
    )


class DeviceConfig(Section):
    id: str = Field("van-dev", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Device id.")
    data_dir: Path = Field(Path("/var/lib/appliance"), description="All state lives here, encrypted.")
    time_servers: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\[\]-]+$", max_length=255)]] = Field(
        default_factory=list, max_length=8,
        description="NTP servers (host or host:port) that `appliance selftest` measures the clock against: "
        "the same servers chrony uses (firmware-config/chrony). Empty: the check asks the local NTP daemon only.",
    )


class StorageConfig(Section):
    key_provider: Literal["file", "rpi-otp", "env"] = Field(
        "file",
        description="Where database keys come from: 'file' (one 0600 key file per database, made at "
        "provisioning), 'rpi-otp' (the Raspberry Pi OTP private key plus a salt file), 'env' (development).",
    )
    keys_dir: Path | None = Field(None, description="Folder for key and salt files; default <data_dir>/keys.")
    key_env: str = Field(
        "APPLIANCE_DB_KEY", min_length=1, max_length=64,
        description="Environment variable holding a 64-hex-digit master key (key_provider = 'env' only).",
    )


class MqttConfig(Section):
    broker: str = Field(
        "mqtts://localhost:8883", description="Broker URL: mqtts://host:port (TLS) or mqtt://host:port (tests)."
    )
    ca_file: Path | None = Field(None, description="CA certificate that signed the broker's certificate (PEM).")
    cert_file: Path | None = Field(None, description="This device's client certificate (PEM); its CN is the device id.")
    key_file: Path | None = Field(None, description="This device's client private key (PEM, mode 0600).")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval in seconds.")
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, le=2**32 - 1,
        description="How long the broker keeps this device's session (queued QoS 1 messages) while offline.",
    )
    chunk_bytes: int = Field(
        256 * 1024, ge=4096, le=16 * 1024 * 1024, description="Payload size of one bundle chunk."
    )


class WatchlistConfig(Section):
    control_room_key: Path | None = Field(
        None,
        description="The control room's pinned Ed25519 public key (PEM); "
        "default <data_dir>/keys/control-room.ed25519.pub.",
    )
    device_key: Path | None = Field(
        None, description="This device's X25519 private key (PEM, 0600); default <data_dir>/keys/device.x25519.key."
    )
    max_bundle_mb: int = Field(1024, ge=1, le=8192, description="Largest bundle a device accepts, in MiB.")
    stale_transfer_h: float = Field(
        48.0, gt=0, le=24 * 30, description="Incomplete transfers older than this are dropped from the spool."
    )


class EventsConfig(Section):
    receipts: bool = Field(
        True, description="Wait for the control-room receiver's receipts and publish again what it has not "
        "confirmed (survives a broker that loses acknowledged messages). Off: PUBACK is the end of the road."
    )
    receipt_timeout_s: float = Field(
        30.0, ge=1, le=3600, description="Publish unconfirmed events again after this long without receipt progress."
    )
    status_interval_s: float = Field(
        30.0, ge=1, le=3600, description="Publish the retained status at least this often (and on every change)."
    )
    max_inflight: int = Field(20, ge=1, le=1000, description="Outbox events published and not yet acknowledged.")


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or 'localhost': reachable only from the device itself."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ConsoleConfig(Section):
    enabled: bool = Field(True, description="Serve the in-van console (the officers' web page) from the daemon.")
    bind: str = Field(
        "127.0.0.1", min_length=1, max_length=255,
        description="Address the console listens on: 127.0.0.1 for a screen on the device itself, or the van "
        "LAN address for a tablet (then tls_cert and tls_key are required: `appliance provision --console-bind`).",
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the console.")
    tls_cert: Path | None = Field(
        None, description="HTTPS certificate (PEM) for the console. Required when `bind` is not a loopback "
        "address: officers' PINs and watchlist photos must not cross the van's network in clear.",
    )
    tls_key: Path | None = Field(None, description="The console certificate's private key (PEM, 0600).")
    session_minutes: float = Field(
        20.0, gt=0, le=24 * 60, description="An officer is logged out after this many minutes without a touch."
    )
    session_max_hours: float = Field(
        12.0, gt=0, le=48, description="Hard limit on one login, however active (about one shift)."
    )
    secure_cookies: bool = Field(
        False, description="Mark the session cookie Secure (HTTPS only). On by default when tls_cert is set."
    )
    max_failed_logins: int = Field(
        5, ge=1, le=100, description="Failed PINs in a row before an officer id is locked out for a while."
    )
    lockout_s: float = Field(
        60.0, gt=0, le=24 * 3600, description="First lockout after max_failed_logins; it doubles on each further "
        "failure, up to 16 times this."
    )

    @model_validator(mode="before")
    @classmethod
    def _secure_cookies_with_tls(cls, data):
        if isinstance(data, dict) and data.get("tls_cert") and "secure_cookies" not in data:
            data = {**data, "secure_cookies": True}
        return data

    @model_validator(mode="after")
    def _no_clear_text_off_the_device(self):
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.enabled and self.tls_cert is None and not is_loopback(self.bind):
            raise ValueError(
                f"bind = {self.bind!r} is reachable from the van's network: set tls_cert and tls_key "
                f"(`appliance provision --console-bind {self.bind}` makes them); officers' PINs and watchlist "
                "photos must not cross a network in clear"
            )
        return self

    @property
    def https(self) -> bool:
        return self.tls_cert is not None


class DeploymentConfig(Section):
    wipe_watchlist_on_end: bool = Field(
        False, description="Erase the watchlist when a deployment ends (the next deployment needs a new bundle)."
    )
    two_officer_confirmation: bool = Field(
        False, description="Forward an alert as confirmed only when two different officers have confirmed it."
    )
    max_hours: float = Field(
        12.0, ge=0.25, le=72, description="Longest planned duration of one deployment (start to planned end)."
    )


class RetentionConfig(Section):
    crop_days: int = Field(
        31, ge=1, le=3650, description="Alert crops (live face images) are purged this many days after the "
        "alert, unless the alert is on legal hold."
    )
    records_days: int = Field(
        2190, ge=1, le=36500, description="Alerts (without images) and decisions are deleted after this many "
        "days; the audit chain is never purged on the device (export it first)."
    )
    interval_minutes: float = Field(60.0, ge=1, le=24 * 60, description="How often the purge runs.")


class CommandsConfig(Section):
    max_lifetime_s: int = Field(
        3600, ge=10, le=7 * 24 * 3600, description="A signed command whose expiry is further than this after "
        "its issue time is refused (bounds how long nonces are remembered)."
    )
    clock_skew_s: int = Field(
        300, ge=0, le=3600, description="Allowed difference between the control room's clock and the van's."
    )


class Config(Section):
    device: DeviceConfig = DeviceConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    models: ModelsConfig = ModelsConfig()
    capture: CaptureConfig = CaptureConfig()
    detector: DetectorConfig = DetectorConfig()
    quality: QualityConfig = QualityConfig()
    tracker: TrackerConfig = TrackerConfig()
    matcher: MatcherConfig = MatcherConfig()
    alerts: AlertConfig = AlertConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig = MqttConfig()
    watchlist: WatchlistConfig = WatchlistConfig()
    console: ConsoleConfig = ConsoleConfig()
    events: EventsConfig = EventsConfig()
    deployment: DeploymentConfig = DeploymentConfig()
    retention: RetentionConfig = RetentionConfig()
    commands: CommandsConfig = CommandsConfig()


def format_validation_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{origin}: field '{where}': {first['msg']}{more}"


def load_config(path: Path | None = None, overrides: dict | None = None) -> Config:
    """Load and validate the TOML config; no path means built-in defaults. Raises ConfigError, one line."""
    data: dict = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, origin)) from None
