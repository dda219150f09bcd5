"""Shared set-up for the accountability tests: a real SQLCipher events store with the audit chain attached,
and a deployment manager with a fixed matching context."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from appliance.audit.chain import AuditLog, AuditSigner
from appliance.config import DeploymentConfig
from appliance.deployments.manager import DeploymentManager
from appliance.deployments.record import DeploymentRequest, MatchingContext
from appliance.events.store import EventStore
from appliance.keys.keypairs import generate_device, load_signing_key
from appliance.storage import KeyFileProvider

CTX = MatchingContext(watchlist_id="met-wanted", watchlist_version=7, watchlist_sha256="ab" * 32,
                      watchlist_subjects=5, threshold=0.6142, model_id="mobilefacenet-int8", model_sha256="cd" * 32,
                      expected_false_alert_rate=0.0001)


class Clock:
    def __init__(self, t: datetime | None = None):
        self.t = t or datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += timedelta(**kw)


def open_events(data_dir: Path) -> tuple[EventStore, AuditLog]:
    """The events store on SQLCipher with the audit chain hooked in, signing with a fresh device key."""
    keys = data_dir / "keys"
    if not (keys / "device.ed25519.key").exists():
        generate_device(keys)
    store = EventStore.open(data_dir, KeyFileProvider(keys))
    audit = AuditLog(store, AuditSigner(load_signing_key(keys / "device.ed25519.key")), "van-01")
    audit.attach(store)
    return store, audit


def request(clock, hours: float = 4, who: str = "PC-1234") -> DeploymentRequest:
    return DeploymentRequest(authorised_by=who, purpose="Wanted offenders, night-time economy",
                             location_text="High Street, outside the station", dpia_ref="DPIA-2026-041",
                             planned_end=clock() + timedelta(hours=hours))


def manager(store, audit, clock, *, counters=None, wipe=None, **config) -> DeploymentManager:
    return DeploymentManager(store, "van-01", context=lambda: CTX, config=DeploymentConfig(**config),
                             counters=counters, wipe_watchlist=wipe, audit=audit, clock=clock)
