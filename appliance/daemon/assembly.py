"""The van's parts built from the configuration: the one place that knows how they connect.

The lower packages (watchlist, sync, events, audit, deployments, retention, commands) each know only their own
job and the packages below them; what joins them (which key file the receiver verifies with, which callbacks
the deployment manager calls, which connection the command listener shares) lives here, above all of them.
`Appliance` (daemon/service.py) runs these steps in order; the CLI uses the same factories for the commands
that open one part alone (`appliance watchlist receive`, `appliance audit verify`, ...).

Moved here in issue 14 from `watchlist/device.py`, `audit/device.py` and `deployments/device.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from appliance.audit.chain import AuditLog, AuditSigner
from appliance.audit.tables import AUDIT_SCHEMA
from appliance.commands.actions import Revocation, device_actions, matching_stopper, watchlist_eraser
from appliance.commands.handler import CommandHandler
from appliance.commands.tables import COMMAND_NONCES_SCHEMA
from appliance.config import Config
from appliance.deployments.context import context_from_parts
from appliance.deployments.manager import DeploymentManager
from appliance.deployments.tables import DEPLOYMENTS_SCHEMA
from appliance.deployments.types import DeploymentRecord
from appliance.events.store import EventStore
from appliance.keys.keypairs import load_device_private, load_verify_key
from appliance.keys.paths import control_room_key_path, device_key_path, identity_key_path
from appliance.matching.gallery import Gallery
from appliance.retention.purge import RetentionService
from appliance.retention.tables import LEGAL_HOLDS_SCHEMA
from appliance.storage import key_provider_from_config
from appliance.watchlist.receiver import WatchlistReceiver
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.types import WatchlistAck

log = logging.getLogger(__name__)

# The accountability packages' tables in the events database, each owned (and migrated) by its package.
EVENTS_SCHEMA_PARTS = (AUDIT_SCHEMA, DEPLOYMENTS_SCHEMA, LEGAL_HOLDS_SCHEMA, COMMAND_NONCES_SCHEMA)


# -- storage ------------------------------------------------------------------------------------------------
def open_events(config: Config, *, create: bool = True) -> EventStore:
    """The events database with every accountability table in it."""
    events = EventStore.open(config.device.data_dir, key_provider_from_config(config), create=create)
    events.two_officer = config.deployment.two_officer_confirmation  # counters count outcomes, as the console
    return with_accountability_tables(events)


def with_accountability_tables(events: EventStore) -> EventStore:
    """Create or migrate the tables the accountability packages keep in the events database. Each also does
    its own when it is built; this makes the database whole at once, for tools that only read it."""
    for part in EVENTS_SCHEMA_PARTS:
        events.ensure_schema(part)
    return events


def open_store(config: Config, *, create: bool = True) -> WatchlistStore:
    return WatchlistStore.open(config.device.data_dir, key_provider_from_config(config), create=create)


# -- watchlist ----------------------------------------------------------------------------------------------
def make_receiver(config: Config, store: WatchlistStore,
                  on_applied: Callable[[WatchlistStore], None] | None = None,
                  on_ack: Callable[[WatchlistAck], None] | None = None) -> WatchlistReceiver:
    return WatchlistReceiver(
        store=store,
        device_id=config.device.id,
        verify_key=load_verify_key(control_room_key_path(config)),
        device_key=load_device_private(device_key_path(config)),
        model_id=config.models.embedder,
        dim=embedding_size(config),
        on_applied=on_applied,
        on_ack=on_ack,
    )


def embedding_size(config: Config) -> int | None:
    """The embedder's output size from the model manifest, or None if the manifest cannot say."""
    from appliance.errors import ModelError
    from appliance.runtime.manifest import load_manifest

    try:
        size = load_manifest(config.models.dir).get(config.models.embedder, "embedder").raw.get("embedding_size")
    except (ModelError, OSError, KeyError):
        return None
    return int(size) if size else None


def gallery_swapper(match_service) -> Callable[[WatchlistStore], None]:
    """on_applied callback: load the new gallery from the store and swap it into the MatchService."""

    def swap(store: WatchlistStore) -> None:
        match_service.swap(store.load_gallery())

    return swap


def make_sync_service(config: Config, receiver: WatchlistReceiver, conn=None):
    """conn: the daemon's one shared MQTT connection; without it (`appliance watchlist receive`) the service
    connects by itself. The broker gives a van certificate one client id, its CN, so a second connection of
    the same van displaces the first: do not run the CLI beside the daemon."""
    from appliance.sync.mqtt import MqttSettings
    from appliance.sync.watchlist_sync import WatchlistSyncService

    settings = MqttSettings.from_config(config.mqtt, client_id=config.device.id)
    return WatchlistSyncService(
        settings, receiver, config.device.data_dir / "spool" / "bundles",
        max_bundle_bytes=config.watchlist.max_bundle_mb << 20,
        stale_after_s=config.watchlist.stale_transfer_h * 3600,
        conn=conn,
    )


# -- accountability -----------------------------------------------------------------------------------------
def open_audit(config: Config, events: EventStore) -> AuditLog:
    """An AuditLog over `events` signing with this device's identity key."""
    return AuditLog(events, AuditSigner.from_file(identity_key_path(config)), config.device.id)


@dataclass
class Safeguards:
    """The audit chain, deployments (the matching gate), retention and signed commands of the running van."""

    audit: AuditLog
    deployments: DeploymentManager
    retention: RetentionService
    commands: CommandHandler
    listener: object | None = None  # CommandListener when MQTT is on

    def start(self) -> None:
        self.retention.start()
        if self.listener is not None:
            self.listener.start()

    def check(self) -> None:
        """Every few seconds, off the hot path: planned ends, CLI starts/ends, the deployment's counts."""
        self.deployments.check()
        self.deployments.update_counts()

    def stop(self) -> None:
        if self.listener is not None:
            try:
                self.listener.stop()
            except Exception:
                log.exception("stopping the command listener failed")
        self.retention.stop()
        self.deployments.update_counts()


def record_watchlist_ack(audit: AuditLog, ack: WatchlistAck) -> None:
    kind = "watchlist.applied" if ack.get("status") == "applied" else "watchlist.refused"
    audit.record(kind, "control-room", {k: ack.get(k) for k in ("transfer_id", "bundle_sha256", "watchlist_id",
                                                                "version", "watchlist_sha256", "reason", "detail")})


def build_safeguards(config: Config, *, events: EventStore, watchlist: WatchlistStore, matcher, embedder_spec,
                     threshold: Callable[[], float], counters: Callable[[], dict], reset_tracks: Callable[[], None],
                     with_mqtt: bool = True, mqtt_conn=None) -> Safeguards:
    """The audit chain (hooked into the events store), deployments, retention and signed commands, joined.

    mqtt_conn: the van's shared connection (appliance.events.publisher.van_connection) for the command
    listener; None with with_mqtt makes the listener connect by itself."""
    audit = open_audit(config, events)
    audit.attach(events)  # alerts, decisions, deployments: audited in their own transaction

    def wipe() -> None:
        matcher.swap(Gallery.empty(matcher.gallery.dim))
        reset_tracks()
        watchlist_eraser(watchlist)()

    deployments = DeploymentManager(
        events, config.device.id,
        context=lambda: context_from_parts(watchlist, matcher.gallery.n_subjects, threshold(), embedder_spec),
        config=config.deployment, counters=counters, wipe_watchlist=wipe, audit=audit)

    def on_change(event: str, record: DeploymentRecord) -> None:
        # Tracks start afresh at both ends: a face in view before the start had its looks taken unembedded,
        # and at the end every track and its match history is forgotten with the deployment.
        reset_tracks()
        if event == "ended" and watchlist.meta() is None and matcher.gallery.n_subjects:  # wiped by the CLI
            matcher.swap(Gallery.empty(matcher.gallery.dim))

    deployments.on_change(on_change)
    deployments.load()
    revocation = Revocation(stop_matching=matching_stopper(matcher, reset_tracks),
                            erase_watchlist=watchlist_eraser(watchlist), deployments=deployments, audit=audit,
                            current_watchlist_id=lambda: (watchlist.meta() or {}).get("watchlist_id"))
    handler = CommandHandler(device_id=config.device.id, verify_key=load_verify_key(control_room_key_path(config)),
                             events=events, audit=audit, actions=device_actions(deployments, revocation),
                             config=config.commands)
    listener = None
    if with_mqtt:
        from appliance.commands.listener import CommandListener

        listener = CommandListener.from_config(config, handler, conn=mqtt_conn)
    return Safeguards(audit, deployments, RetentionService(events, audit, config.retention), handler, listener)
