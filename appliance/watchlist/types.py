"""The records the watchlist package hands to other packages (issue 14: typed seams).

`WatchlistSummary` is the watchlist in force as the rest of the van sees it (a frozen dataclass: it never
travels as is); the others are TypedDicts, plain dicts at run time, named as the rows and the MQTT contracts
name their fields (appliance/schemas/watchlist_ack.json, status.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class ActiveWatchlist(TypedDict):
    """The `active` object of a watchlist ack."""

    watchlist_id: str
    version: int
    watchlist_sha256: str
    subjects: int
    expires_at: str


class StatusWatchlist(TypedDict):
    """The status topic's `watchlist` (lfr.status/1)."""

    id: str
    version: int
    subjects: int
    expires_at: str


@dataclass(frozen=True)
class WatchlistSummary:
    """The watchlist in force: one record, whatever reads it. Two MQTT contracts spell its id differently,
    and only these two methods know it: the ack's `active` says `watchlist_id`, the status says `id`."""

    watchlist_id: str
    version: int
    watchlist_sha256: str
    subjects: int
    expires_at: str

    def ack_payload(self) -> ActiveWatchlist:
        return {"watchlist_id": self.watchlist_id, "version": self.version,
                "watchlist_sha256": self.watchlist_sha256, "subjects": self.subjects, "expires_at": self.expires_at}

    def status_payload(self) -> StatusWatchlist:
        """The status topic's `watchlist` (appliance/schemas/status.json)."""
        return {"id": self.watchlist_id, "version": self.version, "subjects": self.subjects,
                "expires_at": self.expires_at}


class WatchlistMeta(TypedDict):
    """The applied watchlist's row (WatchlistStore.meta()): what the signed bundle said, and when it applied."""

    watchlist_id: str
    version: int
    kind: str  # full, delta
    watchlist_sha256: str
    content_sha256: str
    bundle_sha256: str
    model_id: str
    issued_at: str
    expires_at: str
    signer: str
    applied_at: str


class SubjectRow(TypedDict):
    """A row of the subjects table (WatchlistStore.subject): the console shows some of it to the officer."""

    id: str
    display_name: str
    category: str
    legal_basis: str
    image_source: str
    image_date: str | None
    added_by: str | None
    review_due: str | None
    expires_at: str
    notes: str | None
    entry_sha256: str
    version_added: int


class SyncEvent(TypedDict, total=False):
    """A row of sync_events: a bundle applied or refused. WatchlistStore.last_event() gives time, status,
    reason, detail, watchlist_id and version; applied_event() the whole row."""

    id: int
    time: str
    status: str  # applied, refused
    reason: str | None
    detail: str | None
    transfer_id: str | None
    bundle_sha256: str | None
    watchlist_id: str | None
    version: int | None


class WatchlistStatus(TypedDict):
    """WatchlistStore.status() (`appliance watchlist status --json`, the self-test); the metadata's fields are
    None when no watchlist is applied."""

    schema: str  # watchlist_status/1
    watchlist_id: str | None
    version: int | None
    watchlist_sha256: str | None
    subjects: int
    templates: int
    model_id: str | None
    issued_at: str | None
    expires_at: str | None
    expired: bool
    signer: str | None
    applied_at: str | None
    last_sync: SyncEvent | None
    last_refusal: SyncEvent | None


class WatchlistAck(TypedDict):
    """A bundle's answer, watchlist_ack/1 (appliance/schemas/watchlist_ack.json): applied or refused, with
    what the header claimed and the watchlist in force afterwards."""

    schema: str
    device: str
    time: str
    status: str  # applied, refused
    transfer_id: str | None
    bundle_sha256: str | None
    watchlist_id: str | None
    version: int | None
    watchlist_sha256: str | None
    reason: str | None
    detail: str | None
    active: ActiveWatchlist | None
