"""The records of signed commands that cross package lines (issue 14: typed seams). TypedDicts: plain dicts
at run time, named as appliance/schemas/command_ack.json names them."""

from __future__ import annotations

from typing import Any, TypedDict


class CommandBody(TypedDict):
    """What the control room commands (appliance/schemas/command.json's `command`): build_command()."""

    id: str
    type: str  # signing.TYPES
    device_id: str
    issued_at: str
    expires_at: str
    nonce: str
    args: dict[str, Any]


class CommandEnvelope(TypedDict):
    """The signed command as published on a device's commands topic: sign_command()."""

    schema: str
    command: CommandBody
    key_id: str
    sig: str  # base64 Ed25519 over the canonical command


class RevocationResult(TypedDict, total=False):
    """What a revocation did, step by step (the ack's `result`, and the `revocation` audit entry). A step
    that failed is False; matching_stopped_ms is the time to stop matching."""

    matching_stopped: bool
    matching_stopped_ms: float
    watchlist_erased: bool
    deployment_ended: str | None  # the id of the deployment it ended


class DeploymentEnded(TypedDict):
    """end_deployment's result."""

    deployment_id: str
    ended_at: str


class DeploymentStarted(TypedDict):
    """start_deployment's result."""

    deployment_id: str
    starts_at: str
    planned_end: str


# An action's result, the ack's `result` (an action may also return None: the ack says {}).
ActionResult = RevocationResult | DeploymentEnded | DeploymentStarted | dict[str, Any]


class CommandAck(TypedDict):
    """A van's answer to a command (command_ack/1): done, refused (with the reason; nothing was done) or
    failed (the action did not complete; `result` says what did)."""

    schema: str
    device_id: str
    time: str
    status: str  # done, refused, failed
    command_id: str | None
    type: str | None
    reason: str | None
    detail: str | None
    result: ActionResult | None
