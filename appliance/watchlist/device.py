"""Wiring for the van: the watchlist store, receiver and MQTT sync service built from the config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.config import Config
from appliance.keys.keypairs import load_device_private, load_verify_key
from appliance.storage import key_provider_from_config
from appliance.watchlist.receiver import WatchlistReceiver
from appliance.watchlist.store import WatchlistStore


def keys_dir(config: Config) -> Path:
    return config.storage.keys_dir or (config.device.data_dir / "keys")


def control_room_key_path(config: Config) -> Path:
    return config.watchlist.control_room_key or keys_dir(config) / "control-room.ed25519.pub"


def device_key_path(config: Config) -> Path:
    return config.watchlist.device_key or keys_dir(config) / "device.x25519.key"


def open_store(config: Config, *, create: bool = True) -> WatchlistStore:
    return WatchlistStore.open(config.device.data_dir, key_provider_from_config(config), create=create)


def make_receiver(config: Config, store: WatchlistStore,
                  on_applied: Callable[[WatchlistStore], None] | None = None,
                  on_ack: Callable[[dict], None] | None = None) -> WatchlistReceiver:
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
