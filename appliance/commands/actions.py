"""What each signed command does on the van. The daemon supplies the parts; this module keeps the order.

Revocation, in this order, each step recorded:
  1. stop matching at once (the matcher gets an empty gallery and every track is forgotten: in memory, ~ms);
  2. erase the watchlist (subjects, templates, photos; the versions seen are kept against replays);
  3. end the deployment (reason "revoked": its event goes to the outbox, the gate closes);
  4. one `revocation` audit entry; the handler then acks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from appliance.commands.handler import Action, ActionFailed
from appliance.commands.signing import Command, CommandRefused
from appliance.commands.types import DeploymentEnded, DeploymentStarted, RevocationResult
from appliance.deployments.record import DeploymentError, DeploymentRequest
from appliance.watchlist.timeutil import parse_time

log = logging.getLogger(__name__)


class Revocation:
    def __init__(self, *, stop_matching: Callable[[], None], erase_watchlist: Callable[[], None], deployments,
                 audit, current_watchlist_id: Callable[[], str | None]):
        self.stop_matching = stop_matching
        self.erase_watchlist = erase_watchlist
        self.deployments = deployments  # DeploymentManager (or None)
        self.audit = audit
        self.current_watchlist_id = current_watchlist_id

    def __call__(self, cmd: Command) -> RevocationResult:
        named = cmd.args.get("watchlist_id")
        active = self.current_watchlist_id()
        if named and active and named != active:
            raise CommandRefused("not_applicable", f"watchlist {named} is not the one loaded here ({active})")
        actor = f"control-room:{cmd.key_id}"
        steps: RevocationResult = {}
        errors = []
        t0 = time.perf_counter()
        for name, step in (("matching_stopped", self.stop_matching), ("watchlist_erased", self.erase_watchlist)):
            try:
                step()
                steps[name] = True
            except Exception as e:  # keep going: the later steps still make the van safer
                log.exception("revocation step %s failed", name)
                steps[name] = False
                errors.append(f"{name}: {e}")
            if name == "matching_stopped":
                steps["matching_stopped_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        ended = None
        if self.deployments is not None:
            try:
                ended = self.deployments.end("revoked", by=actor)
            except Exception as e:
                log.exception("revocation: ending the deployment failed")
                errors.append(f"deployment_end: {e}")
        steps["deployment_ended"] = ended["id"] if ended else None
        self.audit.record("revocation", actor, {"command_id": cmd.id, "watchlist_id": active,
                                                "reason": cmd.args.get("reason"), **steps,
                                                "errors": errors or None})
        log.warning("watchlist %s revoked by the control room: matching stopped, list erased, deployment %s ended",
                    active, steps["deployment_ended"])
        if errors:
            raise ActionFailed("; ".join(errors)[:500], steps)
        return steps


def end_deployment(deployments) -> Callable[[Command], DeploymentEnded]:
    def run(cmd: Command) -> DeploymentEnded:
        try:
            record = deployments.end("command", by=f"control-room:{cmd.key_id}",
                                     deployment_id=cmd.args.get("deployment_id"))
        except DeploymentError as e:
            raise CommandRefused("not_applicable", str(e)) from None
        if record is None:
            raise CommandRefused("not_applicable", "no deployment is active")
        return {"deployment_id": record["id"], "ended_at": record["ended_at"]}
    return run


def start_deployment(deployments) -> Callable[[Command], DeploymentStarted]:
    def run(cmd: Command) -> DeploymentStarted:
        a = cmd.args
        loc = a["location"]
        req = DeploymentRequest(authorised_by=a["authorised_by"], purpose=a["purpose"], location_text=loc["text"],
                                lat=loc.get("lat"), lon=loc.get("lon"), dpia_ref=a["dpia_ref"],
                                planned_end=parse_time(a["planned_end"]))
        try:
            record = deployments.start(req, source="command",
                                       extra={"command": {"id": cmd.id, "key_id": cmd.key_id}})
        except DeploymentError as e:
            raise CommandRefused("not_applicable", str(e)) from None
        return {"deployment_id": record["id"], "starts_at": record["starts_at"], "planned_end": record["planned_end"]}
    return run


def device_actions(deployments, revocation: Revocation) -> dict[str, Action]:
    return {"revoke_watchlist": revocation, "end_deployment": end_deployment(deployments),
            "start_deployment": start_deployment(deployments)}





def matching_stopper(matcher, reset: Callable[[], None] | None = None) -> Callable[[], None]:
    """Step 1 of a revocation: an empty gallery in the matcher (atomic swap) and every track forgotten."""
    from appliance.matching.gallery import Gallery

    def stop() -> None:
        matcher.swap(Gallery.empty(matcher.gallery.dim))
        if reset is not None:
            reset()
    return stop


def watchlist_eraser(store) -> Callable[[], None]:
    """Step 2: delete the subjects, templates and photos (secure_delete overwrites the freed pages), then
    checkpoint the write-ahead log so no copy of them is left there. The versions seen stay (replays)."""
    def erase() -> None:
        store.revoke()
        store.checkpoint()
    return erase
