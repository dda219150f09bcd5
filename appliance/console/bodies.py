"""Request bodies of the console's JSON API: size-capped, parsed with bounds, validated by pydantic models.

Every malformed field gets a 4xx with one line naming it; nothing a browser (or anyone with a session and the
CSRF token) sends can reach a store unchecked or raise a 500.

    body = await read_model(request, DecisionBody)      # a model, or a JSONResponse to return as is
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from appliance.sync.payloads import PayloadError, parse_json

MAX_JSON_BYTES = 16 * 1024  # the largest form (a deployment) is under 2 KB
MAX_HOURS = 24 * 366       # the deployment manager applies deployment.max_hours; this only keeps dates finite
LOGIN_MAX_BYTES = 4096     # officer id and PIN: a few dozen bytes
PAGE_SIZE_MAX = 200
EVENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

M = TypeVar("M", bound=BaseModel)


def _text(v: str | None) -> str | None:
    if v is None:
        return None
    # A lone surrogate cannot be stored or logged; parse_json refuses "\ud800" escapes, this is belt and braces.
    v.encode("utf-8")
    return v


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=MAX_JSON_BYTES)


class DecisionBody(_Body):
    decision: Literal["confirm", "reject", "unsure"]
    note: str | None = Field(None, max_length=1000)

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        return _text(v)


class DeploymentStartBody(_Body):
    purpose: str = Field(min_length=1, max_length=1000)
    location: str = Field(min_length=1, max_length=500)
    dpia: str = Field(min_length=1, max_length=128)
    hours: float = Field(gt=0, le=MAX_HOURS, allow_inf_nan=False)
    lat: float | None = Field(None, allow_inf_nan=False)  # the manager says whether it is a place on Earth
    lon: float | None = Field(None, allow_inf_nan=False)

    @field_validator("purpose", "location", "dpia")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is required")
        return _text(v)


class DeploymentEndBody(_Body):
    id: str | None = Field(None, max_length=128)


class LoginForm(BaseModel):
    """The login form (urlencoded). Anything else in the form is ignored; both fields are cut to 64 characters."""

    officer_id: str = ""
    pin: str = ""

    @field_validator("officer_id")
    @classmethod
    def _officer_id(cls, v: str) -> str:
        return v.strip()[:64]

    @field_validator("pin")
    @classmethod
    def _pin(cls, v: str) -> str:
        return v[:64]

    @classmethod
    def from_form(cls, form) -> LoginForm:
        return cls(officer_id=str(form.get("officer_id", "")), pin=str(form.get("pin", "")))


class AlertsQuery(BaseModel):
    """?limit=&before= of GET /api/alerts. `limit` is clamped to 1..PAGE_SIZE_MAX; `before` is a paging cursor
    the store understands: an alert's event_id or an ISO time (empty: the newest page)."""

    model_config = ConfigDict(extra="ignore")
    limit: int = 50
    before: str | None = None

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int) -> int:
        return max(1, min(v, PAGE_SIZE_MAX))

    @field_validator("before")
    @classmethod
    def _before(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not EVENT_ID.match(v):
            datetime.fromisoformat(v)  # ValueError: reported as the "before" message below
        return v


def _error(msg: str, code: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=code)


# One line per field, the same words the console has always used (tests/unit/test_console_*.py).
_MESSAGES = {
    "decision": "decision must be one of confirm, reject, unsure",
    "note": "note must be text of at most 1000 characters",
    "hours": f"hours must be a number of hours greater than 0 (at most {MAX_HOURS})",
    "lat": "lat must be a number (or left out)",
    "lon": "lon must be a number (or left out)",
    "id": "id must be text",
    "limit": "limit must be a number",
    "before": "before must be the event_id of the last alert shown or an ISO 8601 time",
}


def _first(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        return f"{where} is not a field of this request"
    if where in _MESSAGES:
        return _MESSAGES[where]
    if kind == "missing" or value is None or (isinstance(value, str) and not value.strip()):
        return f"{where} is required"
    if kind == "string_too_long":
        return f"{where} is longer than {err['ctx']['max_length']} characters"
    return f"{where}: {err['msg']}"


async def bounded_body(request: Request, max_bytes: int) -> bytes | str:
    """The body, read no further than `max_bytes` whatever Content-Length says, or one line saying why not.
    The bytes are kept on the request, so request.form() afterwards parses them without reading again."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        return f"the body is larger than {max_bytes} bytes"
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_bytes:
                return f"the body is larger than {max_bytes} bytes"
    except ClientDisconnect:
        return "the body was cut off"
    # Starlette's private body cache (it has no public setter): body(), form() and json() read it from here.
    request._body = bytes(raw)
    return request._body


async def read_model(request: Request, model: type[M], *, max_bytes: int = MAX_JSON_BYTES,
                     empty_ok: bool = False) -> M | JSONResponse:
    """The request's JSON body as `model`, or the 4xx response saying what is wrong (413: too large)."""
    raw = await bounded_body(request, max_bytes)
    if isinstance(raw, str):
        return _error(raw, 413 if "larger" in raw else 400)
    if not raw and empty_ok:
        data = {}
    else:
        try:
            data = parse_json(bytes(raw), max_bytes=max_bytes, max_depth=4, what="the body")
        except PayloadError as e:
            return _error("expected a JSON body" if "not UTF-8 JSON" in str(e) or "empty" in str(e) else str(e))
    if not isinstance(data, dict):
        return _error("expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        return _error(_first(e))


def read_query(request: Request, model: type[M]) -> M | JSONResponse:
    """The request's query string as `model`, or the 400 response saying what is wrong."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as e:
        return _error(_first(e))
