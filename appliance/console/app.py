"""The in-van console: a Starlette app the daemon serves (see server.py) for the officers in the van.

    app = create_app(ConsoleBackend(events, watchlist, officers, status, decide, config.console))
    ConsoleServer(app, config.console.bind, config.console.port).start()

Pages: /login, / (the console). API (JSON, all behind a session): /api/alerts, /api/alerts/{id},
/api/alerts/{id}/crop.jpg, /api/alerts/{id}/reference.jpg, POST /api/alerts/{id}/decision, /api/status,
/api/session, POST /api/ping, POST /api/deployment/start, POST /api/deployment/end (only when the backend has
a deployments manager), and /api/stream (server-sent events: alert, decision, status, outbox, deployment, expired).
Everything the page uses is served from here: the van is often offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from appliance.console.backend import ConsoleBackend
from appliance.console.bodies import DecisionBody, DeploymentEndBody, DeploymentStartBody, bounded_body, read_model
from appliance.console.security import COOKIE, ConsoleGate, same_origin
from appliance.console.sessions import LoginThrottle, SessionManager
from appliance.console.stream import CLOSE, Hub, sse
from appliance.console.views import alert_view, decision_view, outcome_view
from appliance.deployments.record import DeploymentRequest
from appliance.errors import ApplianceError
from appliance.watchlist.timeutil import utcnow

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DECISIONS = ("confirm", "reject", "unsure")
LOGIN_MAX_BYTES = 4096  # officer id and PIN: a few dozen bytes
STATUS_EVERY_S = 2.0  # the stream pushes the status strip this often (no polling by the page)
PAGE_SIZE_MAX = 200
EVENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _cursor_error(before: str) -> str | None:
    """None when `before` is a paging cursor the store understands: an alert's event_id or an ISO time."""
    if EVENT_ID.match(before):
        return None
    try:
        datetime.fromisoformat(before)
    except ValueError:
        return "before must be the event_id of the last alert shown or an ISO 8601 time"
    return None


def _template(name: str) -> str:
    return (HERE / "templates" / name).read_text(encoding="utf-8")


def _fill(template: str, **values: str) -> str:
    for k, v in values.items():
        template = template.replace("{{" + k + "}}", html.escape(v, quote=True))
    return template


def create_app(backend: ConsoleBackend, *, clock: Callable[[], float] = time.monotonic) -> Starlette:
    cfg = backend.config
    sessions = SessionManager(cfg.session_minutes * 60, cfg.session_max_hours * 3600, clock)
    throttle = LoginThrottle(cfg.max_failed_logins, cfg.lockout_s, clock)
    hub = Hub()
    events, watchlist = backend.events, backend.watchlist
    index_html, login_html = _template("index.html"), _template("login.html")

    def audit(kind: str, actor: str, **data) -> None:
        if backend.audit is not None:
            try:
                backend.audit(kind, actor or "-", data)
            except Exception:
                log.exception("console audit hook failed on %s", kind)

    # -- views ----------------------------------------------------------------------------------------
    def subject_and_photo(subject_id: str, cache: dict) -> tuple[dict | None, bool]:
        if subject_id not in cache:
            subject = watchlist.subject(subject_id)
            has_photo = subject is not None and watchlist.reference_photo(subject_id) is not None
            cache[subject_id] = (subject, has_photo)
        return cache[subject_id]

    def view(alert, decisions: list, cache: dict | None = None) -> dict:
        subject, has_photo = subject_and_photo(alert["subject_id"], {} if cache is None else cache)
        return alert_view(alert, subject, decisions, has_photo, backend.two_officer)

    def decision_with_outcome(d) -> dict:
        v = decision_view(d)
        v["outcome"] = outcome_view(events.decisions_for(v["alert_id"]), backend.two_officer)
        return v

    # Numbered readings of the outbox backlog. The number is taken BEFORE the count is read, so a reading
    # numbered above a decision's own reading was counted after that decision's commit: the page may take
    # its backlog 0 as "this decision is sent", whatever order the stream and the POST response arrive in.
    reading_numbers = itertools.count(1)

    def outbox_reading() -> dict:
        seq = next(reading_numbers)
        try:
            backlog = events.outbox_backlog()
        except Exception:
            log.exception("console could not read the outbox backlog")
            backlog = None
        return {"seq": seq, "backlog": backlog}

    def status_snapshot() -> dict:
        outbox = outbox_reading()
        try:
            status = dict(backend.status() or {})
        except Exception:
            log.exception("console status provider failed")
            status = {"error": "status unavailable"}
        try:
            counters = events.counters()
        except Exception:
            log.exception("console counters failed")
            counters = {}
        return {"status": status, "counters": counters, "outbox": outbox}

    # -- the store's writer threads -> open pages -------------------------------------------------------
    def on_store_event(kind: str, data) -> None:
        try:
            if kind == "alert":
                hub.publish("alert", view(data, []))  # just committed: no decision yet
            elif kind == "decision":
                hub.publish("decision", decision_with_outcome(data))
            elif kind == "outbox" and hub.clients():  # rows were sent: a fresh, numbered reading (outbox_reading)
                hub.publish("outbox", outbox_reading())
            elif kind == "deployment":
                hub.publish("deployment", {})  # the page refreshes its status strip
        except Exception:  # never disturb the writer
            log.exception("console could not forward a %s event", kind)

    unsubscribe = events.subscribe(on_store_event)

    # -- pages ----------------------------------------------------------------------------------------
    def login_page(message: str = "", officer_id: str = "", status_code: int = 200, headers=None) -> HTMLResponse:
        body = _fill(login_html, message=message, officer_id=officer_id, device_id=backend.device_id)
        return HTMLResponse(body, status_code=status_code, headers=headers)

    async def login_get(request: Request) -> Response:
        if sessions.get(request.cookies.get(COOKIE), touch=False) is not None:
            return RedirectResponse("/", status_code=303)
        return login_page()

    async def login_post(request: Request) -> Response:
        raw = await bounded_body(request, LOGIN_MAX_BYTES)
        if isinstance(raw, str):
            return login_page(raw[:1].upper() + raw[1:] + ".", "", 413 if "larger" in raw else 400)
        form = await request.form()
        officer_id = str(form.get("officer_id", "")).strip()[:64]
        pin = str(form.get("pin", ""))[:64]
        wait = throttle.retry_after(officer_id)
        if wait > 0:
            await run_in_threadpool(audit, "login.failed", officer_id, reason="locked", retry_after_s=math.ceil(wait))
            return login_page(f"Too many wrong PINs for this officer id. Try again in {math.ceil(wait)} s.",
                              officer_id, 429, {"Retry-After": str(math.ceil(wait))})
        officer = await run_in_threadpool(backend.officers.verify, officer_id, pin) if officer_id and pin else None
        if officer is None:
            locked = throttle.failure(officer_id)
            await run_in_threadpool(audit, "login.failed", officer_id, reason="wrong id or PIN",
                                    locked_s=math.ceil(locked))
            msg = "Wrong officer id or PIN."
            if locked:
                msg += f" Locked for {math.ceil(locked)} s."
            return login_page(msg, officer_id, 401)
        throttle.success(officer_id)
        token, _ = sessions.create(officer.id, officer.display_name)
        await run_in_threadpool(audit, "login", officer.id, via="console")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=cfg.secure_cookies, path="/")
        return resp

    async def logout(request: Request) -> Response:
        s = request.state.session
        sessions.end(request.state.token)
        await run_in_threadpool(audit, "logout", s.officer_id, via="console")
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=cfg.secure_cookies)
        return resp

    async def index(request: Request) -> Response:
        s = request.state.session
        return HTMLResponse(_fill(index_html, csrf=s.csrf, officer_id=s.officer_id,
                                  officer_name=s.display_name, device_id=backend.device_id,
                                  two_officer="on" if backend.two_officer else "off",
                                  deployments="on" if backend.deployments is not None else "off"))

    # -- API ------------------------------------------------------------------------------------------
    def session_info(request: Request) -> JSONResponse:
        s = request.state.session
        return JSONResponse({"officer_id": s.officer_id, "display_name": s.display_name,
                             "expires_in_s": round(sessions.expires_in(s))})

    def list_alerts(request: Request) -> JSONResponse:
        try:
            limit = max(1, min(int(request.query_params.get("limit", 50)), PAGE_SIZE_MAX))
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        # Keyset paging: the store continues below (created_at, rowid) of the cursor alert, never an OFFSET.
        before = request.query_params.get("before") or None
        if before is not None and (error := _cursor_error(before)):
            return JSONResponse({"error": error}, status_code=400)
        cache: dict = {}
        alerts = events.alerts(limit + 1, before)  # one more than asked: tells the page whether older ones exist
        more = len(alerts) > limit
        alerts = alerts[:limit]
        return JSONResponse({"alerts": [view(a, events.decisions_for(a["event_id"]), cache) for a in alerts],
                             "more": more})

    def get_alert(request: Request) -> JSONResponse:
        eid = request.path_params["event_id"]
        a = events.alert(eid)
        if a is None:
            return JSONResponse({"error": "no such alert"}, status_code=404)
        return JSONResponse(view(a, events.decisions_for(eid)))

    def _jpeg(data: bytes | None) -> Response:
        if not data:
            return JSONResponse({"error": "no image"}, status_code=404)
        return Response(bytes(data), media_type="image/jpeg")

    def crop(request: Request) -> Response:
        a = events.alert(request.path_params["event_id"])
        return _jpeg(a.get("crop_jpeg") if a else None)

    def reference(request: Request) -> Response:
        a = events.alert(request.path_params["event_id"])
        return _jpeg(watchlist.reference_photo(a["subject_id"]) if a else None)

    async def decide(request: Request) -> Response:
        s = request.state.session
        eid = request.path_params["event_id"]
        body = await read_model(request, DecisionBody)
        if isinstance(body, Response):
            return body
        decision, note = body.decision, body.note
        if await run_in_threadpool(events.alert, eid) is None:
            return JSONResponse({"error": "no such alert"}, status_code=404)
        note = (note or "").strip() or None
        d = await run_in_threadpool(backend.decide, eid, s.officer_id, decision, note)
        body = await run_in_threadpool(decision_with_outcome, d)
        body["outbox"] = await run_in_threadpool(outbox_reading)  # read after the commit: see outbox_reading
        return JSONResponse(body, status_code=201)

    def status(request: Request) -> JSONResponse:
        return JSONResponse(status_snapshot())

    # -- deployments: the logged-in officer authorises (issue 5) --------------------------------------------
    def _error(msg: str, code: int = 400) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=code)

    def _deployment_request(s, body: DeploymentStartBody) -> DeploymentRequest:
        """The request from the validated form (console/bodies.py: every field checked, hours finite)."""
        return DeploymentRequest(authorised_by=s.officer_id, purpose=body.purpose.strip(),
                                 location_text=body.location.strip(), dpia_ref=body.dpia.strip(),
                                 planned_end=utcnow() + timedelta(hours=body.hours), lat=body.lat, lon=body.lon)

    async def deployment_start(request: Request) -> Response:
        manager = backend.deployments
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
        hub.publish("deployment", {})
        return JSONResponse({"deployment": record}, status_code=201)

    async def deployment_end(request: Request) -> Response:
        manager = backend.deployments
        if manager is None:
            return _error("deployments are not managed from this console", 404)
        body = await read_model(request, DeploymentEndBody, empty_ok=True)
        if isinstance(body, Response):
            return body
        deployment_id = body.id
        try:
            record = await run_in_threadpool(manager.end, "officer", by=request.state.session.officer_id,
                                             deployment_id=deployment_id)
        except ApplianceError as e:
            return _error(str(e), 409)
        if record is None:
            return _error("no deployment is active", 409)
        hub.publish("deployment", {})
        return JSONResponse({"deployment": record})

    def ping(request: Request) -> JSONResponse:
        return JSONResponse({"expires_in_s": round(sessions.expires_in(request.state.session))})

    async def stream(request: Request) -> Response:
        token = request.state.token
        officer_id = request.state.session.officer_id
        client = hub.attach()

        async def still_valid() -> bool:
            return (sessions.get(token, touch=False) is not None
                    and await run_in_threadpool(backend.officers.is_active, officer_id))

        async def events_out():
            try:
                yield "retry: 2000\n\n"
                yield sse("status", await run_in_threadpool(status_snapshot))
                next_status = time.monotonic() + STATUS_EVERY_S
                while True:
                    timeout = max(0.05, next_status - time.monotonic())
                    try:
                        msg = await asyncio.wait_for(client.queue.get(), timeout)
                    except asyncio.TimeoutError:
                        msg = None
                    if msg is CLOSE:
                        return
                    if msg is not None:
                        yield msg
                        continue
                    if not await still_valid():
                        yield sse("expired", {})
                        return
                    yield sse("status", await run_in_threadpool(status_snapshot))
                    next_status = time.monotonic() + STATUS_EVERY_S
            finally:
                hub.detach(client)

        return StreamingResponse(events_out(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        hub.close()
        if callable(unsubscribe):
            unsubscribe()

    routes = [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", index, methods=["GET"]),
        Route("/api/session", session_info, methods=["GET"]),
        Route("/api/ping", ping, methods=["POST"]),
        Route("/api/status", status, methods=["GET"]),
        Route("/api/stream", stream, methods=["GET"]),
        Route("/api/alerts", list_alerts, methods=["GET"]),
        Route("/api/alerts/{event_id}", get_alert, methods=["GET"]),
        Route("/api/alerts/{event_id}/crop.jpg", crop, methods=["GET"]),
        Route("/api/alerts/{event_id}/reference.jpg", reference, methods=["GET"]),
        Route("/api/alerts/{event_id}/decision", decide, methods=["POST"]),
        Route("/api/deployment/start", deployment_start, methods=["POST"]),
        Route("/api/deployment/end", deployment_end, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ConsoleGate, sessions=sessions, officers=backend.officers)],
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.sessions = sessions
    app.state.throttle = throttle
    app.state.backend = backend
    return app


__all__ = ["create_app", "same_origin"]
