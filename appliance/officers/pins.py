"""PIN rules and hashing. A PIN is never stored or logged: only its argon2id hash is kept.

argon2id with modest memory (19 MiB, OWASP's minimum profile) keeps a login under ~50 ms on a Pi 5 while
making an offline guess at a stolen hash expensive; the database is encrypted as well.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance.errors import ApplianceError

MIN_PIN_DIGITS = 6
MAX_PIN_DIGITS = 12
_PIN = re.compile(rf"^[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}$")

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the officer id is unknown, so a wrong id costs as long as a wrong PIN.
_DUMMY_HASH = _HASHER.hash("000000")


class PinError(ApplianceError):
    """A PIN does not follow the rules (digits only, 6 to 12 of them, not trivially guessable)."""


def check_pin_format(pin: str) -> str:
    if not _PIN.match(pin or ""):
        raise PinError(f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    if len(set(pin)) == 1 or pin in "01234567890123" or pin in "98765432109876":
        raise PinError("that PIN is too easy to guess (all one digit, or a run like 123456)")
    return pin


def hash_pin(pin: str) -> str:
    return _HASHER.hash(check_pin_format(pin))


def verify_pin(pin_hash: str | None, pin: str) -> bool:
    """Constant work whatever the outcome; `pin_hash` None means "no such officer" (still hashes once)."""
    try:
        return _HASHER.verify(pin_hash or _DUMMY_HASH, pin or "") and pin_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def rehash_if_needed(pin_hash: str, pin: str) -> str | None:
    """A new hash of a PIN that just verified, when the stored one uses older parameters; else None."""
    return _HASHER.hash(pin) if _HASHER.check_needs_rehash(pin_hash) else None
