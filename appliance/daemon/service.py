"""`appliance run`: the daemon. `build()` and `start()` are flat lists of `init_*` / `start_*` steps, each building
or starting one part through the factories in `daemon/assembly.py` (the one place that knows how parts connect).

    capture ─▶ FrameProcessor (vision, tracker, matcher, alert rule) ─▶ EventStore (outbox) ─▶ MQTT
                                                           console (officer) ◀─┘
    MQTT ─▶ watchlist sync ─▶ WatchlistStore ─▶ MatchService.swap()

Threads: the frame loop (hot path), the capture grabber, the watchlist sync, the outbox publisher, the
status publisher, the console server and the systemd watchdog. Logs: one line per state change, never per
frame, never anything biometric.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from appliance.alerts.rule import AlertRule
from appliance.capture import open_source
from appliance.capture.latest import LatestFrameGrabber, StateChange
from appliance.config import Config, load_config
from appliance.console.backend import ConsoleStatus
from appliance.daemon.assembly import (
    build_safeguards,
    gallery_swapper,
    make_receiver,
    make_sync_service,
    open_events,
    open_store,
    record_watchlist_ack,
)
from appliance.daemon.frames import AlertEvidence, Counters, FrameProcessor
from appliance.daemon.reload import plan_reload
from appliance.device.notify import Notifier, Watchdog
from appliance.errors import ApplianceError
from appliance.events.models import Alert, epoch_iso
from appliance.events.status import StatusReporter
from appliance.matching.group_evidence import group_figures, group_warning
from appliance.matching.service import MatchService
from appliance.matching.threshold import resolve_threshold
from appliance.timeutil import parse_time
from appliance.vision.detector import TileSchedule
from appliance.vision.fingerprint import pipeline_warning
from appliance.vision.pipeline import FacePipeline
from appliance.vision.tracker import FaceTracker
from appliance.watchlist.types import WatchlistSummary

log = logging.getLogger("appliance.daemon")

WATCHLIST_CHECK_S = 5.0


class Appliance:
    """The running appliance. `start()` brings every part up; `stop()` takes them down in reverse order."""

    def __init__(self, config: Config, config_path: Path | None = None, source: str | None = None,
                 with_mqtt: bool = True, with_console: bool = True):
        self.config = config
        self.config_path = config_path
        self.source = source or config.capture.source
        self.with_mqtt = with_mqtt
        self.with_console = with_console
        self.notifier = Notifier()
        self.watchdog = Watchdog(self.notifier, required=("frames",))
        self.counters = Counters()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.state = "starting"
        self.fps = 0.0
        self.sync = None
        self.publisher = None
        self.mqtt = None  # the van's one MQTT connection, shared by the publisher, the sync and the commands
        self.console = None
        self.safeguards = None
        self._reset_pending = threading.Event()
        # Set by the watchlist sync thread; the frame loop flushes the tracks itself, between frames, because
        # FrameProcessor is not thread-safe and a reset in the middle of process() would corrupt it.
        self._flush_tracks = threading.Event()
        # SIGHUP only sets this; the frame loop re-reads the config and applies it between frames (reload()).
        self._reload_requested = threading.Event()
        self.pipeline_warnings: list[str] = []
        self.group_warnings: list[str] = []  # the threshold not covered by the evaluation across groups
        self.reload_warnings: list[str] = []  # settings in the config file that wait for a restart

    # -- assembly: one flat list of steps, each building one part (the factories are in daemon/assembly.py) --
    def build(self) -> None:
        self.init_data_dir()
        self.init_pipeline()
        self.init_watchlist()
        self.init_matcher()
        self.init_events()
        self.init_frames()
        self.init_camera()
        self.init_mqtt()
        self.init_safeguards()  # audit chain (hooked into the events store), deployments, retention, commands
        self.init_expiry()
        self._check_pipeline()
        self._check_group_evidence()
        self.init_watchlist_sync()
        self.init_publisher()
        self.init_console()

    def init_data_dir(self) -> None:
        self.config.device.data_dir.mkdir(parents=True, exist_ok=True)

    def init_pipeline(self) -> None:
        self.pipeline = FacePipeline.from_config(self.config)
        self.threshold = resolve_threshold(self.config.matcher, self.pipeline.embedder_spec)

    def init_watchlist(self) -> None:
        self.watchlist = open_store(self.config)

    def init_matcher(self) -> None:
        self.matcher = MatchService.for_embedder(self.config.matcher, self.pipeline.embedder_spec,
                                                 self.watchlist.load_gallery(), self.config.models.dir)

    def init_events(self) -> None:
        self.events = open_events(self.config)
        self.status = StatusReporter(self.config.device.id, self.events)

    def init_frames(self) -> None:
        cfg = self.config
        self.rule = AlertRule(cfg.alerts)
        self.tracker = FaceTracker(cfg.tracker)
        self.frames = FrameProcessor(self.pipeline, self.tracker, self.matcher, self.rule, self._on_alert,
                                     matching_enabled=self.matching_enabled, counters=self.counters,
                                     schedule=TileSchedule.for_detector(self.pipeline.detector,
                                                                            cfg.detector.tile_schedule))

    def init_camera(self) -> None:
        self.camera = LatestFrameGrabber.from_config(open_source(self.source, self.config.capture),
                                                     self.config.capture, on_state=self._on_camera_state)

    def init_mqtt(self) -> None:
        if self.with_mqtt:
            from appliance.events.publisher import van_connection

            self.mqtt = van_connection(self.config)

    def init_safeguards(self) -> None:
        self.safeguards = build_safeguards(self.config, events=self.events, watchlist=self.watchlist,
                                           matcher=self.matcher, embedder_spec=self.pipeline.embedder_spec,
                                           threshold=lambda: self.threshold, counters=self.counters.snapshot,
                                           reset_tracks=self._reset_pending.set, with_mqtt=self.with_mqtt,
                                           mqtt_conn=self.mqtt)

    def init_expiry(self) -> None:
        self._watchlist_expires = self._expiry()
        self._next_expiry = self.watchlist.next_expiry()

    def init_watchlist_sync(self) -> None:
        if not self.with_mqtt:
            return
        audit = self.safeguards.audit
        receiver = make_receiver(self.config, self.watchlist, on_applied=self._on_watchlist_applied,
                                 on_ack=lambda ack: record_watchlist_ack(audit, ack))  # every bundle is audited
        self.sync = make_sync_service(self.config, receiver, conn=self.mqtt)

    def init_publisher(self) -> None:
        if not self.with_mqtt:
            return
        from appliance.events.publisher import OutboxPublisher

        self.publisher = OutboxPublisher.from_config(self.config, self.events, status=self.status, conn=self.mqtt,
                                                     audit_head=self.safeguards.audit.head_payload)

    def init_console(self) -> None:
        if not self.with_console:
            return
        from appliance.console.app import create_app
        from appliance.console.backend import ConsoleBackend, store_decision
        from appliance.console.server import ConsoleServer
        from appliance.officers.store import OfficerStore
        from appliance.storage import key_provider_from_config

        cfg = self.config
        self.officers = OfficerStore.open(cfg.device.data_dir, key_provider_from_config(cfg))
        backend = ConsoleBackend(events=self.events, watchlist=self.watchlist, officers=self.officers,
                                 status=self.console_status, decide=store_decision(self.events, cfg.device.id),
                                 config=cfg.console, device_id=cfg.device.id, audit=self.safeguards.audit.record,
                                 two_officer=cfg.deployment.two_officer_confirmation,
                                 deployments=self.safeguards.deployments)
        self.console = ConsoleServer(create_app(backend), cfg.console.bind, cfg.console.port,
                                     tls_cert=cfg.console.tls_cert, tls_key=cfg.console.tls_key)

    def _check_pipeline(self) -> None:
        """Say plainly when the running pipeline is not the one the threshold was calibrated on."""
        before = self.pipeline_warnings
        self.pipeline_warnings = [f"pipeline changed since calibration: {d}"
                                  for d in pipeline_warning(self.config, self.pipeline.embedder_spec)]
        if self.pipeline_warnings and self.pipeline_warnings != before:
            log.warning("the threshold %.4f was calibrated on another pipeline: %s", self.threshold,
                        "; ".join(self.pipeline_warnings))
            self.safeguards.audit.record("pipeline.changed", "system",
                                         {"model_id": self.pipeline.model_id, "threshold": self.threshold,
                                          "differences": self.pipeline_warnings})

    def _check_group_evidence(self) -> None:
        """Say plainly when the threshold in use is not one the model's evaluation across groups covers
        (matching/group_evidence.py): at start and after a reload changed the threshold."""
        before = self.group_warnings
        warning = group_warning(self.pipeline.embedder_spec, self.threshold)
        self.group_warnings = [warning] if warning else []
        if self.group_warnings and self.group_warnings != before:
            log.warning("%s", warning)
            self.safeguards.audit.record("threshold.unequal", "system", {
                "model_id": self.pipeline.model_id, "threshold": self.threshold, "reason": warning})

    # -- the parts' callbacks -------------------------------------------------------------------------
    def matching_enabled(self) -> bool:
        """Faces are embedded and matched only inside an active deployment, with a valid, unexpired watchlist."""
        expires = self._watchlist_expires
        if self.safeguards is None or not self.safeguards.deployments.is_active():
            return False
        return expires is not None and expires > datetime.now(timezone.utc) and self.matcher.gallery.n_subjects > 0

    def _expiry(self) -> datetime | None:
        meta = self.watchlist.meta()
        if not meta:
            return None
        return parse_time(meta["expires_at"])

    def _on_alert(self, evidence: AlertEvidence) -> None:
        match = evidence.match
        alert = Alert(
            device_id=self.config.device.id,
            subject_id=match.subject_id,
            category=str(match.metadata.get("category", "")),
            score=match.score,
            threshold=match.threshold,
            track_id=evidence.candidate.track_id,
            model_id=self.pipeline.model_id,
            watchlist_id=match.watchlist_id or "",
            watchlist_version=int(match.watchlist_version or 0),
            watchlist_sha256=match.watchlist_hash,
            looks=evidence.candidate.looks,
            captured_at=epoch_iso(evidence.frame_time),
            first_seen_at=epoch_iso(evidence.first_seen) if evidence.first_seen is not None else None,
            crop_jpeg=evidence.crop_jpeg,
            deployment_id=self.safeguards.deployments.active_id(),
        )
        self.events.add_alert(alert)  # committed to the outbox before anything is published
        log.info("alert %s raised (track %d, score %.3f ≥ %.3f)", alert.event_id, alert.track_id, alert.score,
                 alert.threshold)

    def _on_watchlist_applied(self, store) -> None:
        gallery_swapper(self.matcher)(store)
        self._watchlist_expires = self._expiry()
        self._next_expiry = self.watchlist.next_expiry()
        self._flush_tracks.set()  # matches against the old list are forgotten with their tracks
        log.info("watchlist %s version %s applied: %d subjects", self.matcher.gallery.watchlist_id,
                 self.matcher.gallery.version, self.matcher.gallery.n_subjects)

    def _on_camera_state(self, change: StateChange) -> None:
        # The grabber logs the change itself; systemd's STATUS= shows it too.
        self.notifier.status(f"camera {change.new.value}")

    # -- status -------------------------------------------------------------------------------------
    def _watchlist_summary(self) -> WatchlistSummary | None:
        """The stored watchlist, counting the subjects the running gallery holds (expired ones left out)."""
        s = self.watchlist.summary()
        return None if s is None else replace(s, subjects=self.matcher.gallery.n_subjects)

    def _update_status(self) -> None:
        """Push what only the daemon knows to the retained status topic (counts only)."""
        counters = self.counters.snapshot()
        wl = self._watchlist_summary()
        self.status.update(
            state=self.state if self.state in ("starting", "running", "stopping") else "degraded",
            detail=None if self.matching_enabled() else self._not_matching_reason(),
            fps=self.fps, faces_seen=counters.get("faces_seen", 0),
            faces_skipped_quality=counters.get("faces_skipped_quality", 0),
            watchlist=wl.status_payload() if wl else None, model_id=self.pipeline.model_id, threshold=self.threshold,
            deployment_id=self.safeguards.deployments.active_id(),
            expected_false_alerts_per_face=self._expected_rate(), warnings=self.warnings(),
        )

    def _not_matching_reason(self) -> str:
        if not self.safeguards.deployments.is_active():
            return "not matching: no active deployment"
        return "not matching: no valid watchlist"

    def _expected_rate(self) -> float | None:
        from appliance.deployments.context import expected_false_alert_rate

        return expected_false_alert_rate(self.pipeline.embedder_spec, self.threshold, self.matcher.gallery.n_subjects)

    def _expected_rate_upper(self) -> float | None:
        from appliance.deployments.context import expected_false_alert_upper

        return expected_false_alert_upper(self.pipeline.embedder_spec, self.threshold,
                                          self.matcher.gallery.n_subjects)

    def console_status(self) -> ConsoleStatus:
        """What the console's status strip and counters panel show."""
        counters = self.counters.snapshot()
        link = self.publisher.link if self.publisher is not None else {"state": "off"}
        wl = self._watchlist_summary()
        store = self.events.counters()
        cal = self.pipeline.embedder_spec.calibration  # None for an uncalibrated model
        return {
            "camera": self.camera.state.value,
            "camera_fps": round(self.fps, 1),
            "faces_seen": counters.get("faces_seen", 0),
            "faces_skipped_quality": counters.get("faces_skipped_quality", 0),
            "watchlist_id": wl.watchlist_id if wl else None,
            "watchlist_version": wl.version if wl else None,
            "watchlist_subjects": wl.subjects if wl else None,
            "watchlist_expires_at": wl.expires_at if wl else None,
            "matching": self.matching_enabled(),
            "broker": link.get("state"),
            "outbox_backlog": self.events.outbox_backlog(),
            "threshold": self.threshold,
            "threshold_floor": cal.floor if cal is not None else None,
            "model_id": self.pipeline.model_id,
            "deployment": self.safeguards.deployments.status(),
            "expected_false_alert_rate": self._expected_rate(),
            "expected_false_alert_rate_upper": self._expected_rate_upper(),
            "rejected_share": store.get("rejected_share"),
            "calibration_groups": group_figures(self.pipeline.embedder_spec),
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """What the console's banner and the status topic say the technician should look at."""
        return [*self.pipeline_warnings, *self.group_warnings, *self.reload_warnings]

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.build()
        self.start_camera()
        self.start_watchlist_sync()
        self.start_publisher()
        self.start_console()
        self.start_safeguards()  # retention thread; the command listener
        self.start_mqtt()
        self.start_frame_loop()
        self.start_watchdog()
        self.state = "running"
        self._update_status()
        degraded = [] if self.matching_enabled() else ["no valid watchlist: not matching"]
        degraded += self.pipeline_warnings
        self.notifier.ready("running" + (f" (degraded: {'; '.join(degraded)})" if degraded else ""))
        log.info("appliance %s running: source %s, model %s, threshold %.4f, watchlist %s", self.config.device.id,
                 self.camera.camera.name, self.pipeline.model_id,
                 self.threshold, self.matcher.gallery.watchlist_id or "none")

    def start_camera(self) -> None:
        self.camera.start()

    def start_watchlist_sync(self) -> None:
        if self.sync is not None:
            self.sync.start()

    def start_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.start()

    def start_console(self) -> None:
        if self.console is not None:
            self.console.start()

    def start_safeguards(self) -> None:
        self.safeguards.start()

    def start_mqtt(self) -> None:
        if self.mqtt is not None:  # every part has attached its topics: connect (in the background if need be)
            self.mqtt.connect_in_background(self._stop, name="mqtt-connect")

    def start_frame_loop(self) -> None:
        loop = threading.Thread(target=self._frame_loop, name="frames", daemon=True)
        loop.start()
        self._threads.append(loop)

    def start_watchdog(self) -> None:
        self.watchdog.start()

    def _frame_loop(self) -> None:
        last_check = 0.0
        window_start, window_frames = time.monotonic(), 0
        while not self._stop.is_set():
            frame = self.camera.get(timeout=0.5)
            now = time.monotonic()
            if self._reload_requested.is_set():  # SIGHUP: the parts change here, between frames
                self._reload_requested.clear()
                try:
                    self.reload()
                except Exception:  # a reload must not stop the van; the running config stays
                    log.exception("reload failed")
            if now - last_check > WATCHLIST_CHECK_S:
                last_check = now
                self._check_watchlist_expiry()
                self.safeguards.check()  # planned end, CLI starts/ends, the deployment's counts
            if self._reset_pending.is_set():  # deployment started, ended or revoked: tracks start afresh
                self._reset_pending.clear()
                self._flush_tracks.clear()
                self.frames.reset()
                self.safeguards.deployments.rebaseline()  # the flushed tracks are not the deployment's
            if self._flush_tracks.is_set():  # a new watchlist: same deployment, its counts go on
                self._flush_tracks.clear()
                self.frames.reset()
            if frame is None:
                continue
            try:
                self.frames.process(frame)
            except Exception:  # a bad frame must not stop the van; the watchdog catches a stuck loop
                log.exception("frame %d could not be processed", frame.seq)
                continue
            self.watchdog.progress("frames")
            window_frames += 1
            if now - window_start >= 2.0:
                self.fps = window_frames / (now - window_start)
                window_start, window_frames = now, 0
                self._update_status()

    def _check_watchlist_expiry(self) -> None:
        """On the frame thread, between frames: when the watchlist or one subject's own `expires_at` passes, the
        smaller gallery is swapped in at once (no restart, no new watchlist), the tracks that were matched
        against the old one are flushed, and the audit log says who left it."""
        now = datetime.now(timezone.utc)
        expires, nxt = self._watchlist_expires, self._next_expiry
        if nxt is None or nxt > now:
            return
        before = set(self.matcher.gallery.subjects)
        self.matcher.swap(self.watchlist.load_gallery())  # expired subjects (or all, once the list expires) left out
        self.frames.reset()
        self._next_expiry = self.watchlist.next_expiry()
        gone = sorted(before - set(self.matcher.gallery.subjects))
        if expires is not None and expires <= now:
            log.warning("watchlist expired at %s: matching stopped", expires.isoformat())
        elif gone:
            log.warning("%d watchlist subject(s) expired: no longer matched", len(gone))
        if gone:
            self.safeguards.audit.record("watchlist.subjects_expired", "system", {
                "watchlist_id": self.matcher.gallery.watchlist_id, "version": self.matcher.gallery.version,
                "subjects": gone, "whole_watchlist": bool(expires is not None and expires <= now)})

    def request_reload(self) -> None:
        """SIGHUP: ask the frame loop to re-read the config file (it owns the parts that change)."""
        self._reload_requested.set()

    def _reloadable_parts(self, threshold: float) -> dict:
        """section -> (the fields its running part declares it can change, how to hand it the new section)."""
        sg = self.safeguards
        return {
            "detector": (self.pipeline.detector.RELOADABLE, self.pipeline.detector.update_config),
            "quality": (self.pipeline.RELOADABLE, self.pipeline.update_config),
            "tracker": (self.tracker.RELOADABLE, self.tracker.update_config),
            "alerts": (self.rule.RELOADABLE, self.rule.update_config),
            "matcher": (self.matcher.RELOADABLE, lambda m: self.matcher.update_config(m, threshold)),
            "deployment": (sg.deployments.RELOADABLE, sg.deployments.update_config),
            "retention": (sg.retention.RELOADABLE, sg.retention.update_config),
            "commands": (sg.commands.RELOADABLE, sg.commands.update_config),
        }

    def reload(self) -> None:
        """Re-read the config file on the frame thread, between frames. Apply what the parts declare they can
        change while running (daemon/reload.py); log, audit (`config.needs_restart`) and show on the console
        whatever else differs. A file that does not load, or a threshold below the floor, changes nothing."""
        if self.config_path is None:
            log.info("reload: no config file to re-read")
            return
        try:
            new = load_config(self.config_path)
            threshold = resolve_threshold(new.matcher, self.pipeline.embedder_spec)
        except ApplianceError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            self.safeguards.audit.record("config.refused", "sighup", {"reason": str(e)})
            return
        parts = self._reloadable_parts(threshold)
        plan = plan_reload(self.config, new, {section: fields for section, (fields, _) in parts.items()})
        for section in plan.applied_sections():
            parts[section][1](getattr(plan.config, section))
        self.config = plan.config
        if plan.applied:
            self.safeguards.audit.record("config.changed", "sighup", {
                "sections": plan.applied_sections(),
                "settings": {k: {"from": d.running, "to": d.file} for k, d in plan.applied.items()}})
        if threshold != self.threshold:
            self.safeguards.audit.record("threshold.changed", "sighup", {"from": self.threshold, "to": threshold})
            self.threshold = threshold
            self._check_group_evidence()
        if plan.needs_restart:
            log.warning("reload: %s: not applied until a restart", ", ".join(sorted(plan.needs_restart)))
            self.safeguards.audit.record("config.needs_restart", "sighup", {
                "settings": {k: {"running": d.running, "file": d.file} for k, d in plan.needs_restart.items()}})
        warning = plan.restart_warning()
        self.reload_warnings = [warning] if warning else []
        if {"detector", "quality"} & set(plan.applied_sections()):
            self._check_pipeline()  # the calibration fingerprint includes the detector and quality settings
        self._update_status()
        log.info("configuration reloaded: %s", ", ".join(sorted(plan.applied)) or "nothing applied")

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self.state = "stopping"
        self.notifier.stopping("stopping")
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.frames.reset()
        if self.safeguards is not None:
            self.safeguards.stop()
        for part in (self.console, self.publisher, self.sync):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)
        if self.mqtt is not None:  # last: the publisher's clean 'offline' status went out through it
            try:
                self.mqtt.close()
            except Exception:
                log.exception("closing the MQTT connection failed")
        self.camera.stop()
        self.watchdog.stop()
        self.events.close()
        self.watchlist.close()
        if getattr(self, "officers", None) is not None:
            self.officers.close()
        log.info("appliance stopped")

    def run_forever(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the configuration."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self._stop.clear()
            self.stop()
        return 0
