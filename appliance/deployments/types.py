"""The records the deployments package hands to other packages (issue 14: typed seams).

TypedDicts, plain dicts at run time: the record is stored as JSON in the deployments table and travels in the
deployment message (appliance/schemas/deployment.json); the field names are that schema's.
"""

from __future__ import annotations

from typing import TypedDict

# A deployment's counts (faces seen, skipped for quality, alerts...): counter name -> count.
DeploymentCounts = dict[str, int]


class DeploymentLocation(TypedDict):
    text: str
    lat: float | None
    lon: float | None


class DeploymentWatchlist(TypedDict):
    """The watchlist the deployment matched with, snapshotted at the start."""

    id: str
    version: int
    sha256: str
    subjects: int


class DeploymentModel(TypedDict):
    id: str
    sha256: str


class CommandRef(TypedDict):
    """The signed command that started a deployment (source "command")."""

    id: str
    key_id: str


class _DeploymentRecord(TypedDict):
    id: str
    authorised_by: str
    source: str  # console, command, cli
    purpose: str
    location: DeploymentLocation
    dpia_ref: str
    starts_at: str
    planned_end: str
    watchlist: DeploymentWatchlist
    threshold: float
    model: DeploymentModel
    expected_false_alert_rate: float | None
    ended_at: str | None
    end_reason: str | None  # END_REASONS in deployments/record.py
    ended_by: str | None


class DeploymentRecord(_DeploymentRecord, total=False):
    """A deployment's record (DeploymentManager.start/end/active/load, get_deployment, list_deployments).
    `command` only when a signed command started it; `counts` only where the record is read back with them
    (get_deployment, list_deployments, the ended message); `two_officer_confirmation` in records of vans that
    send it (the control room applies the rule from it)."""

    command: CommandRef
    counts: DeploymentCounts
    two_officer_confirmation: bool  # the van ran the two-officer rule (absent in records from older vans)


class DeploymentStatus(TypedDict):
    """The active deployment in short (DeploymentManager.status): the console's status strip."""

    id: str
    authorised_by: str
    purpose: str
    location: str  # the location's text
    starts_at: str
    planned_end: str
    watchlist_id: str
    watchlist_version: int
    threshold: float


class DeploymentPayload(TypedDict):
    """The message for lfr/v1/devices/{device}/deployments (deployment/1)."""

    schema: str
    event_id: str
    created_at: str
    device_id: str
    event: str  # started, ended
    deployment: DeploymentRecord
