"""The status strip: the daemon's state, the counters and a numbered outbox reading."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from appliance.console.context import console_of


def status(request: Request) -> JSONResponse:
    return JSONResponse(console_of(request).status_snapshot())


routes = [Route("/api/status", status, methods=["GET"])]
