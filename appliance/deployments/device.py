"""Wiring for the van: the audit chain, deployments, retention and signed commands, built from the running
parts in one call so the daemon stays a list of connections.

    self.safeguards = build_safeguards(cfg, events=self.events, watchlist=self.watchlist, matcher=self.matcher,
                                       embedder_spec=self.pipeline.embedder_spec, threshold=lambda: self.threshold,
                                       counters=self.counters.snapshot, reset_tracks=self.frames.reset,
                                       with_mqtt=self.with_mqtt)
    matching_enabled = ... and self.safeguards.deployments.is_active()
    self.safeguards.start() / .check() every few seconds / .stop()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from appliance.audit.chain import AuditLog
from appliance.audit.device import open_audit
from appliance.commands.actions import Revocation, device_actions, matching_stopper, watchlist_eraser
from appliance.commands.handler import CommandHandler
from appliance.deployments.context import context_from_parts
from appliance.deployments.manager import DeploymentManager
from appliance.keys.keypairs import load_verify_key
from appliance.retention.purge import RetentionService

log = logging.getLogger(__name__)


@dataclass
class Safeguards:
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


def record_watchlist_ack(audit: AuditLog, ack: dict) -> None:
    kind = "watchlist.applied" if ack.get("status") == "applied" else "watchlist.refused"
    audit.record(kind, "control-room", {k: ack.get(k) for k in ("transfer_id", "bundle_sha256", "watchlist_id",
                                                                "version", "watchlist_sha256", "reason", "detail")})


def build_safeguards(config, *, events, watchlist, matcher, embedder_spec, threshold: Callable[[], float],
                     counters: Callable[[], dict], reset_tracks: Callable[[], None],
                     with_mqtt: bool = True, mqtt_conn=None) -> Safeguards:
    """mqtt_conn: the van's shared connection (appliance.events.publisher.van_connection) for the command
    listener; None with with_mqtt makes the listener connect by itself."""
    from appliance.matching.gallery import Gallery
    from appliance.watchlist.device import control_room_key_path

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

    def on_change(event: str, record: dict) -> None:
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
