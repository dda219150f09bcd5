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


def provision_device(tmp_path: Path, *, n_subjects: int = 4, model: str = "mobilefacenet-int8", **config_extra):
    """A data dir with device keys, the pinned control-room key and (n_subjects > 0) an applied watchlist of
    synthetic templates; returns (config, config_path, control-room signing key)."""
    import shutil

    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from appliance.config import load_config
    from appliance.daemon.assembly import open_store
    from appliance.keys.keypairs import generate_control_room
    from appliance.watchlist.builder import build_bundle
    from appliance.watchlist.bundle import open_bundle
    from appliance.watchlist.records import Entry
    from appliance.watchlist.timeutil import iso, utcnow

    data = tmp_path / "data"
    keys = data / "keys"
    generate_device(keys)
    cr = tmp_path / "control-room"
    generate_control_room(cr)
    shutil.copy(cr / "control-room.ed25519.pub", keys / "control-room.ed25519.pub")
    sk = load_signing_key(cr / "control-room.ed25519.key")
    cfg_path = tmp_path / "appliance.toml"
    lines = [f'[device]\nid = "van-01"\ndata_dir = "{data}"\n[storage]\nkey_provider = "file"\n']
    for section, values in config_extra.items():
        lines.append(f"[{section}]\n" + "".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n"
                                                 for k, v in values.items()))
    cfg_path.write_text("".join(lines))
    config = load_config(cfg_path)
    if n_subjects:
        dx = X25519PrivateKey.generate()
        rng = np.random.default_rng(0)
        entries = []
        for i in range(n_subjects):
            t = rng.standard_normal(128).astype(np.float32)
            entries.append(Entry({"id": f"S-{i}", "display_name": f"Person {i}", "category": "wanted",
                                  "legal_basis": "b", "image_source": "c",
                                  "expires_at": iso(utcnow() + timedelta(days=30))},
                                 (t / np.linalg.norm(t))[None, :], b"\xff\xd8\xff" + bytes([i]) * 50))
        built = build_bundle(entries, tmp_path / "wl.lfrwl", watchlist_id="met-wanted", model_id=model,
                             signing_key=sk, recipients=[("van-01", dx.public_key())], version=2)
        store = open_store(config)
        store.apply(open_bundle(built.path, sk.public_key(), "van-01", dx), model_id=model)
        store.close()
    return config, cfg_path, sk
