"""A real console environment for the console's integration and browser tests.

Real SQLCipher stores (events, watchlist, officers), a watchlist applied through the real signed bundle
path, the console served by uvicorn on a free port. The watchlist holds public-domain NASA astronaut
portraits (../shared/data/nasa); the "live" crops are their in-orbit photos, cut out by the real
detector and scored by the real embedder, so the numbers on the screen are real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.alerts.evidence import face_crop_jpeg
from appliance.audit.chain import AuditLog, AuditSigner
from appliance.config import ConsoleConfig, load_config
from appliance.console import ConsoleBackend, ConsoleServer, create_app, store_decision
from appliance.deployments.manager import DeploymentManager
from appliance.deployments.record import MatchingContext
from appliance.events import Alert, EventStore
from appliance.events.publisher import OutboxPublisher
from appliance.matching.threshold import resolve_threshold
from appliance.officers import OfficerStore
from appliance.storage import KeyFileProvider
from appliance.watchlist.builder import build_bundle
from appliance.watchlist.bundle import open_bundle
from appliance.watchlist.enrol import reference_jpeg
from appliance.watchlist.records import Entry
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.timeutil import iso, utcnow

DEVICE = "van-01"
OFFICER, PIN = "PC1234", "246813"
# folder -> (id, category, notes). Their in-orbit photos score above the calibrated threshold (0.63 to 0.78).
SUBJECTS = {
    "christopher_ferguson": ("S-001", "wanted", "Wanted on warrant 24/1187 (burglary). Often carries a blue rucksack."),
    "catherine_coleman": ("S-002", "missing person", "Reported missing 21 Nov. Vulnerable: approach calmly."),
    "michael_lopez-alegria": ("S-003", "bail conditions", "Not to enter the city centre zone before 1 Dec."),
}


@dataclass
class Live:
    """What the camera saw of one subject: the crop an alert carries and its real match score."""

    crop_jpeg: bytes
    score: float


@dataclass
class ConsoleEnv:
    data_dir: Path
    events: EventStore
    watchlist: WatchlistStore
    officers: OfficerStore
    threshold: float
    model_id: str
    live: dict[str, Live]
    status: dict = field(default_factory=dict)
    audit: list = field(default_factory=list)
    server: ConsoleServer | None = None
    audit_log: AuditLog | None = None
    publisher: OutboxPublisher | None = None  # when set, the status strip shows its real link state
    deployments: DeploymentManager | None = None  # when set, the real manager: the console starts and ends them

    def add_alert(self, subject_id: str, track_id: int = 1, **times: str) -> Alert:
        """An alert committed now. `times`: created_at (an earlier moment of a long deployment), captured_at,
        first_seen_at (the alert's frame times; left out, they are unknown, as for alerts stored before them)."""
        meta = self.watchlist.meta()
        live = self.live[subject_id]
        a = Alert(device_id=DEVICE, subject_id=subject_id, category=self.watchlist.subject(subject_id)["category"],
                  score=live.score, threshold=self.threshold, track_id=track_id, model_id=self.model_id,
                  watchlist_id=meta["watchlist_id"], watchlist_version=meta["version"],
                  watchlist_sha256=meta["watchlist_sha256"], crop_jpeg=live.crop_jpeg, deployment_id="dep-0001",
                  looks=2)
        for name, value in times.items():
            setattr(a, name, value)
        self.events.add_alert(a)
        return a

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.publisher is not None:
            self.publisher.stop()
        for s in (self.events, self.watchlist, self.officers):
            s.close()


def _largest_face_crop(pipeline, image) -> tuple[bytes, np.ndarray]:
    faces = pipeline.detect(image) or pipeline.detect(image, portrait=True)
    face = max(faces, key=lambda f: f.detection.width)
    pipeline.embed(image, face)  # even past the quality gate: a test only needs a realistic score
    return face_crop_jpeg(image, face.detection.box), face.embedding


def build_env(tmp_path: Path, nasa_dir: Path, pipeline, *, console: ConsoleConfig | None = None,
              deployments: bool = False) -> ConsoleEnv:
    """The console on real stores. deployments=True: a real DeploymentManager, no deployment active yet (the
    officer starts one from the page); otherwise the status shows a fixed deployment 'Op. Harbour'."""
    data_dir = tmp_path / "data"
    kp = KeyFileProvider(data_dir / "keys")
    events = EventStore.open(data_dir, kp)
    watchlist = WatchlistStore.open(data_dir, kp)
    officers = OfficerStore.open(data_dir, kp)
    officers.add(OFFICER, PIN, display_name="PC 1234 Patel")

    # The watchlist goes through the real path: enrol, sign, encrypt to the device, open, apply.
    now = utcnow()
    entries, live = [], {}
    for folder, (sid, category, notes) in SUBJECTS.items():
        portrait = cv2.imread(str(nasa_dir / folder / "portrait.jpg"))
        enrolment = pipeline.enrol(portrait)
        assert enrolment.ok, (folder, enrolment.reason)
        meta = {"id": sid, "display_name": folder.replace("_", " ").title(), "category": category,
                "legal_basis": "test warrant", "image_source": "NASA (public domain)", "notes": notes,
                "expires_at": iso(now + timedelta(days=30))}
        entries.append(Entry(meta, enrolment.embedding[None, :].astype(np.float32), reference_jpeg(portrait)))
        crop, emb = _largest_face_crop(pipeline, cv2.imread(str(nasa_dir / folder / "iss_photo_1.jpg")))
        live[sid] = Live(crop, float(np.dot(emb, enrolment.embedding)))
    signer, device_key = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    built = build_bundle(entries, tmp_path / "demo.lfrwl", watchlist_id="demo-watchlist", model_id=pipeline.model_id,
                         signing_key=signer, recipients=[(DEVICE, device_key.public_key())], version=3,
                         expires_at=now + timedelta(days=2, hours=5))
    bundle = open_bundle(built.path, signer.public_key(), DEVICE, device_key)
    watchlist.apply(bundle, model_id=pipeline.model_id)

    threshold = resolve_threshold(load_config().matcher, pipeline.embedder_spec)
    env = ConsoleEnv(data_dir, events, watchlist, officers, threshold, pipeline.model_id, live)
    # The real audit chain: decisions are audited by the store's write hook, logins by the console.
    env.audit_log = AuditLog(events, AuditSigner(Ed25519PrivateKey.generate()), DEVICE)
    env.audit_log.attach(events)

    def audit(kind: str, actor: str, data: dict):
        env.audit.append((kind, actor, data))
        return env.audit_log.record(kind, actor, data)
    meta = watchlist.meta()
    env.status.update({
        # the keys of the daemon's console_status()
        "camera": "running", "camera_fps": 24.7, "faces_seen": 1342, "matching": True,
        "watchlist_id": meta["watchlist_id"], "watchlist_version": meta["version"],
        "watchlist_expires_at": meta["expires_at"], "broker": "up",
        "deployment": {"id": "dep-0001", "purpose": "Op. Harbour", "location": "High St / Market Sq",
                       "planned_end": iso(now.replace(hour=18, minute=0, second=0, microsecond=0))},
        "expected_false_alert_rate": 1 / 12500, "expected_rate_source": "LFW evaluation, 3 subjects",
    })

    if deployments:
        config = load_config()
        context = MatchingContext(meta["watchlist_id"], meta["version"], meta["watchlist_sha256"], len(entries),
                                  threshold, pipeline.model_id, "00" * 32, 1 / 12500)
        env.deployments = DeploymentManager(events, DEVICE, context=lambda: context, config=config.deployment)
        env.status.pop("deployment")
        env.status["threshold"] = threshold

    def status() -> dict:
        s = dict(env.status, outbox_backlog=events.outbox_backlog())
        if env.publisher is not None:
            s["broker"] = env.publisher.link["state"]
        if env.deployments is not None:
            s["deployment"], s["matching"] = env.deployments.status(), env.deployments.is_active()
        return s

    backend = ConsoleBackend(events=events, watchlist=watchlist, officers=officers, status=status,
                             decide=store_decision(events, DEVICE), config=console or ConsoleConfig(),
                             audit=audit, device_id=DEVICE, deployments=env.deployments)
    env.server = ConsoleServer(create_app(backend), "127.0.0.1", 0).start()
    return env
