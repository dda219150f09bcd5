"""Console sessions and login throttling, in memory (a restart logs everyone out, which is the safe way).

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie. It ends after `idle_s` without
activity, after `max_s` however active, on logout, or when the officer is disabled. Only a hash of the token
is kept, so a memory dump does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass
class Session:
    officer_id: str
    display_name: str
    csrf: str  # sent back in the X-CSRF-Token header on every POST
    created: float
    last_seen: float


class SessionManager:
    def __init__(self, idle_s: float, max_s: float, clock: Callable[[], float] = time.monotonic):
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, officer_id: str, display_name: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        s = Session(officer_id, display_name, secrets.token_urlsafe(24), now, now)
        with self._lock:
            self._prune(now)
            self._sessions[_digest(token)] = s
        return token, s

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The live session for `token`, or None. `touch` counts this request as activity."""
        if not token:
            return None
        now = self.clock()
        key = _digest(token)
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                return None
            if self._expired(s, now):
                del self._sessions[key]
                return None
            if touch:
                s.last_seen = now
            return s

    def expires_in(self, s: Session) -> float:
        now = self.clock()
        return max(0.0, min(s.last_seen + self.idle_s, s.created + self.max_s) - now)

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def end_officer(self, officer_id: str) -> int:
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.officer_id == officer_id]
            for k in keys:
                del self._sessions[k]
        return len(keys)

    def count(self) -> int:
        with self._lock:
            self._prune(self.clock())
            return len(self._sessions)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen >= self.idle_s or now - s.created >= self.max_s

    def _prune(self, now: float) -> None:
        for k in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[k]


OVERFLOW = "\x00overflow"  # not a possible officer id (ids are stripped printable text)


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Per officer id: after `max_failures` wrong PINs in a row the id is locked for `lockout_s`, doubling with
    each further failure up to 16x. A success clears it. Unknown ids are throttled the same way, so the
    answer does not reveal which ids exist."""

    MAX_TRACKED = 10_000  # bounded memory whatever is typed into the id field

    def __init__(self, max_failures: int, lockout_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.clock = clock
        self._state: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(officer_id: str) -> str:
        return (officer_id or "").strip().casefold()[:64]

    def retry_after(self, officer_id: str) -> float:
        """Seconds until this id may try again (0: it may try now)."""
        now = self.clock()
        with self._lock:
            f = self._state.get(self._key(officer_id))
            if f is None:
                f = self._state.get(OVERFLOW)  # an id the table had no room for shares the overflow's lockout
            return max(0.0, f.locked_until - now) if f else 0.0

    def failure(self, officer_id: str) -> float:
        """Record a wrong PIN; returns the lockout now in force (0 if none)."""
        now = self.clock()
        key = self._key(officer_id)
        with self._lock:
            if key not in self._state and len(self._state) >= self.MAX_TRACKED:
                self._forget_old(now)
                if len(self._state) >= self.MAX_TRACKED:
                    # Full of live lockouts (someone is spraying ids): never evict one, so a locked id stays
                    # locked. New ids share one overflow counter, throttled like any other id.
                    key = OVERFLOW
            f = self._state.setdefault(key, _Failures())
            f.count += 1
            f.last = now
            over = f.count - self.max_failures
            if over >= 0:
                f.locked_until = now + self.lockout_s * min(2 ** over, 16)
            return max(0.0, f.locked_until - now)

    def success(self, officer_id: str) -> None:
        with self._lock:
            self._state.pop(self._key(officer_id), None)

    def _forget_old(self, now: float) -> None:
        """Forget ids that are not locked: first those idle past the longest lockout, then, if the table is
        still full, the oldest ids with failures below the limit. A locked id is never forgotten early."""
        horizon = self.lockout_s * 16
        for k in [k for k, f in self._state.items() if f.locked_until < now and now - f.last > horizon]:
            del self._state[k]
        if len(self._state) >= self.MAX_TRACKED:
            unlocked = [k for k, f in self._state.items() if f.locked_until < now and k != OVERFLOW]
            for k in sorted(unlocked, key=lambda k: self._state[k].last)[: self.MAX_TRACKED // 10]:
                del self._state[k]
