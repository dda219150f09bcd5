"""Bounded parsing of inbound payloads (appliance/sync/payloads.py): size and depth before json.loads."""

from __future__ import annotations

import json
import time

import pytest

from appliance.sync.payloads import PayloadError, max_depth_of, parse_json


@pytest.mark.parametrize("raw, why", [
    (b"[" * 200_000, "nested more than 16"),
    (b'{"a":' * 50, "nested more than 16"),
    (b"x" * 300_000, "limit is"),
    (b"", "empty"),
    (None, "empty"),
    (b"\xff\xfe{}", "not UTF-8 JSON"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": 1e999999}', "not a JSON number"),
    (b'{"note": "\\ud800"}', "lone surrogate"),
    (b'{"a": 1' + b"9" * 5000 + b"}", "not UTF-8 JSON"),
    (b'{"a": "unterminated', "not UTF-8 JSON"),
])
def test_refused_with_one_line(raw, why):
    with pytest.raises(PayloadError, match=why):
        parse_json(raw)


def test_depth_ignores_brackets_inside_strings_and_escapes():
    assert max_depth_of(json.dumps({"a": [1, {"b": "[[[\\\"[[{{"}]}).encode()) == 3
    assert parse_json(json.dumps({"s": "[" * 100}).encode()) == {"s": "[" * 100}


def test_bounded_time_on_hostile_input():
    t0 = time.perf_counter()
    for raw in (b"[" * 250_000, b'"' + b'\\"' * 100_000, b'"\\\\' * 80_000):
        with pytest.raises(PayloadError):
            parse_json(raw)
    assert time.perf_counter() - t0 < 2.0
