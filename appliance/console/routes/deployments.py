"""Deployments: the logged-in officer authorises a start and ends it (issue 5). 404 when the backend has no
deployments manager. The manager's starts and ends are audited by the audit chain's write hook."""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from appliance.console.bodies import DeploymentEndBody, DeploymentStartBody, read_model
from appliance.console.context import console_of
from appliance.deployments.record import DeploymentRequest
from appliance.errors import ApplianceError
from appliance.watchlist.timeutil import utcnow


def _error(msg: str, code: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=code)


def _deployment_request(s, body: DeploymentStartBody) -> DeploymentRequest:
    """The request from the validated form (console/bodies.py: every field checked, hours finite)."""
    return DeploymentRequest(authorised_by=s.officer_id, purpose=body.purpose.strip(),
                             location_text=body.location.strip(), dpia_ref=body.dpia.strip(),
                             planned_end=utcnow() + timedelta(hours=body.hours), lat=body.lat, lon=body.lon)


async def deployment_start(request: Request) -> Response:
    ctx = console_of(request)
    manager = ctx.backend.deployments
    if manager is None:
        return _error("deployments are not managed from this console", 404)
    body = await read_model(request, DeploymentStartBody)
    if isinstance(body, Response):
        return body
    req = _deployment_request(request.state.session, body)
    try:  # the manager checks the rest (max hours, coordinates, a loaded watchlist, none active)
        record = await run_in_threadpool(manager.start, req, source="console")
    except ApplianceError as e:
        return _error(str(e))
    ctx.hub.publish("deployment", {})
    return JSONResponse({"deployment": record}, status_code=201)


async def deployment_end(request: Request) -> Response:
    ctx = console_of(request)
    manager = ctx.backend.deployments
    if manager is None:
        return _error("deployments are not managed from this console", 404)
    body = await read_model(request, DeploymentEndBody, empty_ok=True)
    if isinstance(body, Response):
        return body
    try:
        record = await run_in_threadpool(manager.end, "officer", by=request.state.session.officer_id,
                                         deployment_id=body.id)
    except ApplianceError as e:
        return _error(str(e), 409)
    if record is None:
        return _error("no deployment is active", 409)
    ctx.hub.publish("deployment", {})
    return JSONResponse({"deployment": record})


routes = [
    Route("/api/deployment/start", deployment_start, methods=["POST"]),
    Route("/api/deployment/end", deployment_end, methods=["POST"]),
]
