"""Build a full or delta bundle from entries, sign it and encrypt it to devices (control-room side).

Next to the bundle the builder writes `<bundle>.state.json`: the watchlist id, version, state hash and each
subject's entry digest (hashes only, nothing biometric). A delta is built against that file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.errors import WatchlistError
from appliance.watchlist.bundle import DEFAULT_SEGMENT, write_bundle
from appliance.watchlist.records import Entry, digest, encode_add, encode_remove, state_hash
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import iso, utcnow
from appliance.watchlist.validation import entry_problem

STATE_SCHEMA = "watchlist_state/1"


@dataclass(frozen=True)
class BuiltBundle:
    path: Path
    state_path: Path
    header: dict
    added: list[str]
    removed: list[str]
    unchanged: int


def state_path_for(bundle: Path) -> Path:
    return Path(bundle).with_name(Path(bundle).name + ".state.json")


def load_state(path: Path) -> dict:
    try:
        state = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WatchlistError(f"base state {path} not found") from None
    except json.JSONDecodeError:
        raise WatchlistError(f"base state {path} is not JSON") from None
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise WatchlistError(f"{path} is not a watchlist state file ({STATE_SCHEMA})")
    problem = first_error("watchlist_state", state)
    if problem:
        raise WatchlistError(f"base state {path}: {problem}")
    return state


def build_bundle(
    entries: list[Entry],
    out: Path,
    *,
    watchlist_id: str,
    model_id: str,
    signing_key: Ed25519PrivateKey,
    recipients: list[tuple[str, object]],
    version: int | None = None,
    base_state: dict | None = None,
    expires_at: datetime | None = None,
    issued_at: datetime | None = None,
    segment_bytes: int = DEFAULT_SEGMENT,
    validate: bool = True,
) -> BuiltBundle:
    """Write a signed, encrypted bundle of `entries` (the whole desired list).

    With `base_state` it is a delta against that state: subjects not in it or changed are added (replacing),
    subjects no longer listed are removed. `validate=False` exists only so tests can make bad bundles.
    """
    issued_at = issued_at or utcnow()
    expires_at = expires_at or issued_at + timedelta(days=7)
    if base_state is not None:
        if base_state["watchlist_id"] != watchlist_id:
            raise WatchlistError(
                f"base state is for watchlist {base_state['watchlist_id']}, not {watchlist_id}"
            )
        if base_state["model_id"] != model_id:
            raise WatchlistError(f"base state was built for model {base_state['model_id']}, not {model_id}")
        version = version if version is not None else int(base_state["version"]) + 1
        if version <= int(base_state["version"]):
            raise WatchlistError(f"version {version} must be above the base version {base_state['version']}")
    if version is None:
        raise WatchlistError("a full bundle needs --version (monotonic per watchlist)")
    if expires_at <= issued_at:
        raise WatchlistError("the bundle would expire before it is issued")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise WatchlistError("a subject id appears twice")
    if validate:
        for e in entries:
            problem = entry_problem(e, now=issued_at)
            if problem:
                raise WatchlistError(f"subject {e.id}: {problem}")

    records = {e.id: encode_add(e) for e in entries}
    digests = {sid: digest(r) for sid, r in records.items()}
    base = dict(base_state["entries"]) if base_state else {}
    added = [sid for sid in ids if base.get(sid) != digests[sid]]
    removed = sorted(set(base) - set(digests)) if base_state else []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out.parent) as plain:
        h = hashlib.sha256()
        for sid in removed:
            rec = encode_remove(sid)
            plain.write(rec)
            h.update(rec)
        for sid in added:
            plain.write(records[sid])
            h.update(records[sid])
        size = plain.tell()
        plain.seek(0)
        records.clear()
        fields = {
            "watchlist_id": watchlist_id,
            "version": version,
            "kind": "delta" if base_state else "full",
            "base_version": int(base_state["version"]) if base_state else None,
            "model_id": model_id,
            "issued_at": iso(issued_at),
            "expires_at": iso(expires_at),
            "entry_count": len(added),
            "remove_count": len(removed),
            "content_sha256": h.hexdigest(),
            "watchlist_sha256": state_hash(watchlist_id, digests.items()),
        }
        try:
            header = write_bundle(out, fields, plain, size, signing_key, recipients, segment_bytes=segment_bytes)
        except ValueError as e:
            raise WatchlistError(str(e)) from None
    state = {
        "schema": STATE_SCHEMA,
        "watchlist_id": watchlist_id,
        "version": version,
        "model_id": model_id,
        "watchlist_sha256": fields["watchlist_sha256"],
        "expires_at": fields["expires_at"],
        "entries": digests,
    }
    sp = state_path_for(out)
    sp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    return BuiltBundle(out, sp, header, added, removed, len(entries) - len(added))
