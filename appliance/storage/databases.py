"""The device's databases, in one list: each is `<data_dir>/<label>.db` with its own key for `<label>`.

Provisioning makes (and `--force` crypto-erases) a key for each, the self-test opens each, and each store
opens its own file by its label here. A new database is one more entry.
"""

from __future__ import annotations

from pathlib import Path

WATCHLIST = "watchlist"  # subjects, templates, reference photos (appliance/watchlist/store.py)
EVENTS = "events"  # outbox, alerts, decisions, deployments, the audit chain (appliance/events/store.py)
OFFICERS = "officers"  # console officers and their PIN hashes (appliance/officers/store.py)
DATABASES = (WATCHLIST, EVENTS, OFFICERS)


def db_path(data_dir: Path, label: str) -> Path:
    """Where the database with this key label lives."""
    if label not in DATABASES:
        raise ValueError(f"{label!r} is not one of the device's databases {DATABASES}")
    return Path(data_dir) / f"{label}.db"
