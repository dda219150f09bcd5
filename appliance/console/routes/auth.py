"""Logging in and out, the session's remaining time, and the keep-alive ping."""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from appliance.console.bodies import LOGIN_MAX_BYTES, LoginForm, bounded_body
from appliance.console.context import ConsoleContext, console_of, fill
from appliance.console.security import COOKIE


def login_page(ctx: ConsoleContext, message: str = "", officer_id: str = "", status_code: int = 200,
               headers=None) -> HTMLResponse:
    body = fill(ctx.login_html, message=message, officer_id=officer_id, device_id=ctx.backend.device_id)
    return HTMLResponse(body, status_code=status_code, headers=headers)


async def login_get(request: Request) -> Response:
    ctx = console_of(request)
    if ctx.sessions.get(request.cookies.get(COOKIE), touch=False) is not None:
        return RedirectResponse("/", status_code=303)
    return login_page(ctx)


async def login_post(request: Request) -> Response:
    ctx = console_of(request)
    raw = await bounded_body(request, LOGIN_MAX_BYTES)
    if isinstance(raw, str):
        return login_page(ctx, raw[:1].upper() + raw[1:] + ".", "", 413 if "larger" in raw else 400)
    form = LoginForm.from_form(await request.form())
    officer_id, pin = form.officer_id, form.pin
    wait = ctx.throttle.retry_after(officer_id)
    if wait > 0:
        await run_in_threadpool(ctx.audit, "login.failed", officer_id, reason="locked", retry_after_s=math.ceil(wait))
        return login_page(ctx, f"Too many wrong PINs for this officer id. Try again in {math.ceil(wait)} s.",
                          officer_id, 429, {"Retry-After": str(math.ceil(wait))})
    officer = await run_in_threadpool(ctx.backend.officers.verify, officer_id, pin) if officer_id and pin else None
    if officer is None:
        locked = ctx.throttle.failure(officer_id)
        await run_in_threadpool(ctx.audit, "login.failed", officer_id, reason="wrong id or PIN",
                                locked_s=math.ceil(locked))
        msg = "Wrong officer id or PIN."
        if locked:
            msg += f" Locked for {math.ceil(locked)} s."
        return login_page(ctx, msg, officer_id, 401)
    ctx.throttle.success(officer_id)
    token, _ = ctx.sessions.create(officer.id, officer.display_name)
    await run_in_threadpool(ctx.audit, "login", officer.id, via="console")
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=ctx.backend.config.secure_cookies,
                    path="/")
    return resp


async def logout(request: Request) -> Response:
    ctx = console_of(request)
    s = request.state.session
    ctx.sessions.end(request.state.token)
    await run_in_threadpool(ctx.audit, "logout", s.officer_id, via="console")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=ctx.backend.config.secure_cookies)
    return resp


def session_info(request: Request) -> JSONResponse:
    s = request.state.session
    return JSONResponse({"officer_id": s.officer_id, "display_name": s.display_name,
                         "expires_in_s": round(console_of(request).sessions.expires_in(s))})


def ping(request: Request) -> JSONResponse:
    return JSONResponse({"expires_in_s": round(console_of(request).sessions.expires_in(request.state.session))})


routes = [
    Route("/login", login_get, methods=["GET"]),
    Route("/login", login_post, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/api/session", session_info, methods=["GET"]),
    Route("/api/ping", ping, methods=["POST"]),
]
