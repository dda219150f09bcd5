"""Bounded parsing of inbound MQTT JSON payloads: size and nesting are checked *before* json.loads runs.

Every handler of an inbound topic parses through `parse_json`, so no payload, whatever its bytes, can make the
parser recurse until Python's stack gives out (a RecursionError is not a ValueError and used to escape the
command handler, leaving the message un-acked), take unbounded memory, or smuggle lone surrogates and
non-finite numbers into a store.

    obj = parse_json(raw, max_bytes=64 * 1024, max_depth=16)   # or PayloadError("... one line ...")
"""

from __future__ import annotations

import json
import math
import re

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 16  # the deepest schema we accept (a deployment record) is 4 levels

_TOKENS = re.compile(rb'[\[\]{}"\\]')
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class PayloadError(ValueError):
    """An inbound payload refused before or while parsing; str() is the one line to log and ack."""


def _reject_constant(name: str):
    raise PayloadError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf: no store or schema should ever see it
        raise PayloadError(f"{text[:20]} is not a JSON number in range")
    return value


def max_depth_of(raw: bytes, stop_above: int | None = None) -> int:
    """Nesting depth of the JSON text's arrays and objects, counted without parsing (strings skipped); stops
    counting as soon as it passes `stop_above`."""
    if raw.count(b"[") + raw.count(b"{") <= 1:
        return raw.count(b"[") + raw.count(b"{")
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # the byte after a backslash inside a string is not a token
    for m in _TOKENS.finditer(raw):
        c, i = m.group(), m.start()
        if i == escaped_at:
            continue
        if in_string:
            if c == b"\\":
                escaped_at = i + 1
            elif c == b'"':
                in_string = False
        elif c == b'"':
            in_string = True
        elif c in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                return deepest
        elif c in (b"]", b"}"):
            depth -= 1
    return deepest


def parse_json(raw: bytes | str | None, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_depth: int = DEFAULT_MAX_DEPTH, what: str = "payload"):
    """The parsed JSON value, or PayloadError: larger than max_bytes, nested deeper than max_depth, not UTF-8,
    not JSON, NaN/Infinity, or a string holding a lone surrogate (which no store can encode)."""
    if raw is None:
        raise PayloadError(f"{what} is empty")
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(f"{what} holds a lone surrogate") from None
    if len(raw) > max_bytes:
        raise PayloadError(f"{what} is {len(raw)} bytes, the limit is {max_bytes}")
    if not raw:
        raise PayloadError(f"{what} is empty")
    if max_depth_of(raw, stop_above=max_depth) > max_depth:
        raise PayloadError(f"{what} is nested more than {max_depth} levels deep")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(f"{what} is not UTF-8 JSON (bad UTF-8)") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as e:  # RecursionError: belt and braces, the depth check comes first
        raise PayloadError(f"{what} is not UTF-8 JSON ({str(e)[:80]})") from None
    # "\ud800" escapes decode to lone surrogates: valid JSON, but not encodable text for a database or a log.
    if "\\u" in text and _has_surrogate(value):
        raise PayloadError(f"{what} holds a lone surrogate (\\ud800-\\udfff)")
    return value


def _has_surrogate(value) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False

