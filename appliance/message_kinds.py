"""The registry of MQTT message kinds: the one place a kind is named (contract; docs/events.md, "Message kinds").

Each kind has a name (what the outbox, the audit chain and the console call it), the topic suffix it travels
on under `lfr/v1/devices/{device}/`, its payload schemas (the `schema` value each payload carries and the
JSON Schema file in appliance/schemas/ that checks it, current version first, then the older ones receivers
still accept), and who may send it. The outbox's topics, the validation tables, the control-room receiver
and the topic functions are all derived from this list, so a new kind is one entry here plus its schema file.

It is a module of its own near the bottom of the layers (devtools/import_cycles.py, LAYERS): pure data, so the
watchlist, the MQTT link, the events, the commands and the control room all read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

VAN = "van"
CONTROL_ROOM = "control-room"


@dataclass(frozen=True)
class Kind:
    name: str
    topic: str  # suffix under lfr/v1/devices/{device}/
    schemas: tuple[tuple[str, str], ...]  # (payload "schema" value, schema file stem), current version first
    sender: str  # VAN or CONTROL_ROOM: the broker ACL lets only that side publish on the topic
    outbox: bool = False  # committed to the van's outbox before it is published, delivered exactly once in order
    retained: bool = False  # the broker keeps the last one per van
    binary: bool = False  # not JSON on the wire (bundle chunks); its schema checks what the chunks carry

    @property
    def schema(self) -> str:
        """The payload `schema` value this software writes."""
        return self.schemas[0][0]

    @property
    def schema_file(self) -> str:
        """The stem of the current version's JSON Schema file in appliance/schemas/."""
        return self.schemas[0][1]

    @property
    def accepts(self) -> tuple[str, ...]:
        """Every payload `schema` value a receiver of this kind accepts (a van may still hold older ones)."""
        return tuple(name for name, _ in self.schemas)


ALERT = Kind("alert", "alerts", (("lfr.alert/2", "alert"),
                                 ("lfr.alert/1", "alert_v1")),  # frozen: before captured_at and first_seen_at
             VAN, outbox=True)
DECISION = Kind("decision", "decisions", (("lfr.decision/1", "decision"),), VAN, outbox=True)
DEPLOYMENT = Kind("deployment", "deployments", (("lfr.deployment/1", "deployment"),), VAN, outbox=True)
STATUS = Kind("status", "status", (("lfr.status/1", "status"),), VAN, retained=True)
AUDIT_HEAD = Kind("audit_head", "audit/head", (("lfr.audit_head/1", "audit_head"),), VAN, retained=True)
WATCHLIST_ACK = Kind("watchlist_ack", "watchlist/ack", (("watchlist_ack/1", "watchlist_ack"),), VAN)
COMMAND_ACK = Kind("command_ack", "commands/ack", (("lfr.command_ack/1", "command_ack"),), VAN)
RECEIPT = Kind("receipt", "receipts", (("lfr.receipt/2", "receipt"),  # signed by the control room
                                       ("lfr.receipt/1", "receipt_v1")),  # frozen: unsigned
               CONTROL_ROOM)
COMMAND = Kind("command", "commands", (("lfr.command/1", "command"),), CONTROL_ROOM)
WATCHLIST_BUNDLE = Kind("watchlist_bundle", "watchlist/bundles",
                        (("watchlist_bundle_header/1", "watchlist_bundle_header"),), CONTROL_ROOM, binary=True)

KINDS: tuple[Kind, ...] = (ALERT, DECISION, DEPLOYMENT, STATUS, AUDIT_HEAD, WATCHLIST_ACK, COMMAND_ACK, RECEIPT,
                           COMMAND, WATCHLIST_BUNDLE)
# The kinds that go through the van's outbox, in the order they were added (the outbox's `topic` column).
OUTBOX_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS if k.outbox)

# JSON documents that are not messages but parts of one (inside a signed bundle, or a local report): their
# schemas live beside the messages' in appliance/schemas/, and the registry test knows them by this list.
DOCUMENTS: tuple[str, ...] = ("watchlist_entry", "watchlist_state", "watchlist_status", "watchlist_subjects")


def by_topic(suffix: str) -> Kind | None:
    """The kind that travels on `suffix` (e.g. "alerts"), or None for a topic no kind uses."""
    for k in KINDS:
        if k.topic == suffix:
            return k
    return None


def schema_files() -> dict[str, str]:
    """Every payload `schema` value of every JSON kind -> its schema file stem."""
    return {name: stem for k in KINDS if not k.binary for name, stem in k.schemas}
