"""The device side of a bundle: verify, check, apply in one transaction, swap the gallery, make the ack.

Used by the MQTT sync service (appliance.sync.watchlist_sync) and by `appliance watchlist receive --file`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import ApplianceError
from appliance.message_kinds import WATCHLIST_ACK
from appliance.watchlist.bundle import BundleRefused, file_sha256, open_bundle, read_header_unverified
from appliance.watchlist.store import WatchlistStore
from appliance.watchlist.timeutil import iso, utcnow
from appliance.watchlist.types import WatchlistAck

log = logging.getLogger(__name__)
ACK_SCHEMA = WATCHLIST_ACK.schema
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class WatchlistReceiver:
    store: WatchlistStore
    device_id: str
    verify_key: Ed25519PublicKey  # the control room's key, pinned at provisioning
    device_key: X25519PrivateKey
    model_id: str
    dim: int | None = None
    on_applied: Callable[[WatchlistStore], None] | None = None  # e.g. swap the matcher's gallery
    # Every ack of process() and refuse_transfer(), applied or refused (e.g. the audit).
    on_ack: Callable[[WatchlistAck], None] | None = None
    timings: dict = field(default_factory=dict)  # seconds per step of the last bundle (make bench)

    def process(self, path: Path, *, transfer_id: str | None = None) -> WatchlistAck:
        """Apply the bundle at `path` or refuse it; returns the ack payload (schema watchlist_ack/1), which
        `on_ack` sees first."""
        ack = self._process(path, transfer_id)
        if self.on_ack is not None:
            self.on_ack(ack)
        return ack

    def _process(self, path: Path, transfer_id: str | None) -> WatchlistAck:
        now = utcnow()
        header = None
        self.timings = {}
        try:
            t0 = time.perf_counter()
            opened = open_bundle(path, self.verify_key, self.device_id, self.device_key)
            header = opened.header
            self.store.check_header(header, model_id=self.model_id, now=now)
            self.timings["verify_s"] = time.perf_counter() - t0
            log.info("applying watchlist %s v%s (%s, %d entries)", header["watchlist_id"], header["version"],
                     header["kind"], header["entry_count"])
            t0 = time.perf_counter()
            active = self.store.apply(opened, model_id=self.model_id, now=now, transfer_id=transfer_id,
                                      dim=self.dim)
            self.timings["apply_s"] = time.perf_counter() - t0
        except BundleRefused as e:
            header = e.header or header
            digest = _safe_sha256(path)
            log.warning("watchlist bundle refused: %s: %s", e.reason, e.detail)
            self.store.record_refusal(e.reason, e.detail, header=header, transfer_id=transfer_id,
                                      bundle_sha256=digest, now=now)
            claimed = header or read_header_unverified(path) or {}
            return self._ack("refused", transfer_id, digest, claimed, e.reason, e.detail)
        except (ApplianceError, OSError) as e:  # the database or the disk failed: nothing was applied
            digest = _safe_sha256(path)
            log.error("watchlist bundle not applied: %s", e)
            return self._ack("refused", transfer_id, digest, header or {}, "storage_error", str(e)[:500])
        except Exception as e:  # a signed bundle with a value nothing checked: refuse it, never crash on it
            digest = _safe_sha256(path)
            detail = f"a field could not be used ({type(e).__name__}: {str(e)[:200]})"
            log.error("watchlist bundle refused: malformed: %s", detail)
            self.store.record_refusal("malformed", detail, header=header, transfer_id=transfer_id,
                                      bundle_sha256=digest, now=now)
            return self._ack("refused", transfer_id, digest, header or {}, "malformed", detail)
        log.info("watchlist %s v%s applied: %d subjects, hash %s", active["watchlist_id"], active["version"],
                 active["subjects"], active["watchlist_sha256"][:16])
        detail = None
        if self.on_applied is not None:
            t0 = time.perf_counter()
            try:
                self.on_applied(self.store)
            except Exception as e:  # the list is stored; say so rather than pretend the matcher has it
                log.error("watchlist applied but the matcher did not take it: %s", e)
                detail = f"applied, but the matcher could not load it: {e}"[:500]
            self.timings["swap_s"] = time.perf_counter() - t0
        return self._ack("applied", transfer_id, opened.file_sha256, header, None, detail,
                         watchlist_sha256=active["watchlist_sha256"])

    def refuse_transfer(self, transfer_id: str, reason: str, detail: str) -> WatchlistAck:
        """Refuse a transfer the sync service could not hand over as a bundle (a reused transfer id, too large,
        corrupt): recorded and seen by `on_ack` (the daemon's audit) like a refusal of process()."""
        self.store.record_refusal(reason, detail, header=None, transfer_id=transfer_id, bundle_sha256=None)
        ack = self._ack("refused", transfer_id, None, {}, reason, detail)
        if self.on_ack is not None:
            self.on_ack(ack)
        return ack

    def applied_ack(self, transfer_id: str, bundle_sha256: str | None) -> WatchlistAck:
        """The ack for a transfer that was applied already (e.g. before a crash that lost the ack)."""
        m = self.store.meta() or {}
        return self._ack("applied", transfer_id, bundle_sha256, m, None, None,
                         watchlist_sha256=m.get("watchlist_sha256"))

    def _ack(self, status, transfer_id, bundle_sha256, header, reason, detail, watchlist_sha256=None) -> WatchlistAck:
        def typed(key, t):
            v = header.get(key) if isinstance(header, dict) else None
            return v if isinstance(v, t) and not isinstance(v, bool) else None

        claimed_hash = typed("watchlist_sha256", str)
        if claimed_hash is not None and not _HEX64.match(claimed_hash):
            claimed_hash = None  # a forged header must not break the ack's schema
        return {
            "schema": ACK_SCHEMA,
            "device": self.device_id,
            "time": iso(utcnow()),
            "status": status,
            "transfer_id": transfer_id,
            "bundle_sha256": bundle_sha256,
            "watchlist_id": typed("watchlist_id", str),
            "version": typed("version", int),
            "watchlist_sha256": watchlist_sha256 or claimed_hash,
            "reason": reason,
            "detail": detail,
            "active": self.store.active_summary(),
        }


def _safe_sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None
