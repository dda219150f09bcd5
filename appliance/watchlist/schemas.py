"""JSON Schemas of the watchlist's JSON parts (appliance/schemas/watchlist_*.json) and one-line validation."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

from appliance.watchlist.timeutil import parse_time

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

# "format": "date-time" is checked by parsing, so a time that matches the pattern but cannot exist
# (month 99, 25:00) is refused by the schema instead of raising later, where it is used.
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=(ValueError, OverflowError))
def _is_time(value) -> bool:
    if isinstance(value, str):
        parse_time(value)
    return True


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def first_error(name: str, instance) -> str | None:
    """None if `instance` is valid against schema `name`, else one line naming the field and the problem."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return None
    e = errors[0]
    where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
    if e.validator == "required":
        return f"missing {e.message.split(' ')[0].strip(chr(39))}" + ("" if where == "(top level)" else f" in {where}")
    if e.validator == "additionalProperties":
        return f"unknown field ({e.message})"
    msg = e.message if len(e.message) < 120 else e.message[:117] + "..."
    return f"{where}: {msg}"
