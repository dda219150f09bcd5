"""Events: alerts and officers' decisions, the encrypted events database with its outbox, and the publisher.

    from appliance.events import Alert, Decision, EventStore, OutboxPublisher
    store = EventStore.open(data_dir, key_provider)
    store.add_alert(alert)          # row + outbox row in one committed transaction, then subscribers are told
    OutboxPublisher(store, settings, device_id).start()   # QoS 1, marks rows sent on PUBACK

See docs/events.md for topics, payloads and delivery guarantees.
"""

from appliance.events.models import DECISIONS, Alert, Decision, new_event_id, utc_now_iso
from appliance.events.store import EventStore

__all__ = ["DECISIONS", "Alert", "Decision", "EventStore", "new_event_id", "utc_now_iso"]
