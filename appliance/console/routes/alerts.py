"""Alerts: the keyset-paged list, one alert, its two images, and an officer's decision on it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from appliance.console.bodies import AlertsQuery, DecisionBody, read_model, read_query
from appliance.console.context import console_of


def list_alerts(request: Request) -> Response:
    ctx = console_of(request)
    query = read_query(request, AlertsQuery)
    if isinstance(query, Response):
        return query
    # Keyset paging: the store continues below (created_at, rowid) of the cursor alert, never an OFFSET.
    cache: dict = {}
    alerts = ctx.events.alerts(query.limit + 1, query.before)  # one more than asked: are there older ones?
    more = len(alerts) > query.limit
    alerts = alerts[:query.limit]
    return JSONResponse({"alerts": [ctx.view(a, ctx.events.decisions_for(a["event_id"]), cache) for a in alerts],
                         "more": more})


def get_alert(request: Request) -> JSONResponse:
    ctx = console_of(request)
    eid = request.path_params["event_id"]
    a = ctx.events.alert(eid)
    if a is None:
        return JSONResponse({"error": "no such alert"}, status_code=404)
    return JSONResponse(ctx.view(a, ctx.events.decisions_for(eid)))


def _jpeg(data: bytes | None) -> Response:
    if not data:
        return JSONResponse({"error": "no image"}, status_code=404)
    return Response(bytes(data), media_type="image/jpeg")


def crop(request: Request) -> Response:
    a = console_of(request).events.alert(request.path_params["event_id"])
    return _jpeg(a.get("crop_jpeg") if a else None)


def reference(request: Request) -> Response:
    ctx = console_of(request)
    a = ctx.events.alert(request.path_params["event_id"])
    return _jpeg(ctx.watchlist.reference_photo(a["subject_id"]) if a else None)


async def decide(request: Request) -> Response:
    ctx = console_of(request)
    s = request.state.session
    eid = request.path_params["event_id"]
    body = await read_model(request, DecisionBody)
    if isinstance(body, Response):
        return body
    if await run_in_threadpool(ctx.events.alert, eid) is None:
        return JSONResponse({"error": "no such alert"}, status_code=404)
    note = (body.note or "").strip() or None
    d = await run_in_threadpool(ctx.backend.decide, eid, s.officer_id, body.decision, note)
    out = await run_in_threadpool(ctx.decision_with_outcome, d)
    out["outbox"] = await run_in_threadpool(ctx.outbox_reading)  # read after the commit: see outbox_reading
    return JSONResponse(out, status_code=201)


routes = [
    Route("/api/alerts", list_alerts, methods=["GET"]),
    Route("/api/alerts/{event_id}", get_alert, methods=["GET"]),
    Route("/api/alerts/{event_id}/crop.jpg", crop, methods=["GET"]),
    Route("/api/alerts/{event_id}/reference.jpg", reference, methods=["GET"]),
    Route("/api/alerts/{event_id}/decision", decide, methods=["POST"]),
]
