"""The gate in front of every console route: a live session or nothing, same-origin POSTs, safe headers.

Default deny: every path except the login form and the two assets it needs is refused without a session
(401 for /api/ and /static/, a redirect to the login page for pages). A POST must come from the console's
own origin and carry the session's CSRF token in X-CSRF-Token (the SameSite=Strict cookie already keeps
other sites' requests out; the token and the Origin check also cover an old or odd browser).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.console.sessions import SessionManager

COOKIE = "lfr_console"
PUBLIC_PATHS = frozenset({"/login", "/static/console.css", "/static/login.js", "/static/favicon.svg"})
# Requests an officer makes on purpose; everything else (the stream, images, status) does not keep a
# session alive, so an unattended screen logs out after the idle time.
ACTIVE_PATHS = frozenset({"/", "/api/ping"})
SAFE_METHODS = frozenset({"GET", "HEAD"})

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send "Origin: null" on form POSTs
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def same_origin(request: Request) -> bool:
    """The request's Origin (or, failing that, Referer) names this host and port."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host")
    if not source or not host or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/static/")


class ConsoleGate:
    """Pure ASGI middleware (streams pass straight through, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, *, sessions: SessionManager, officers) -> None:
        self.app = app
        self.sessions = sessions
        self.officers = officers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in HEADERS.items():
                    headers.setdefault(k, v)
                if not path.startswith("/static/"):
                    # Crops and reference photos must never land in the browser's disk cache.
                    headers["Cache-Control"] = "no-store"
            await send(message)

        request = Request(scope)
        if path in PUBLIC_PATHS:
            if method not in SAFE_METHODS and not same_origin(request):
                await self._refuse(403, "cross-site request refused", scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
            return
        token = request.cookies.get(COOKIE)
        touch = path in ACTIVE_PATHS or method not in SAFE_METHODS
        session = self.sessions.get(token, touch=touch)
        if session is not None and not await run_in_threadpool(self.officers.is_active, session.officer_id):
            self.sessions.end_officer(session.officer_id)  # disabled since logging in
            session = None
        if session is None:
            if is_api(path):
                await self._refuse(401, "not logged in", scope, receive, send_with_headers)
            else:
                await RedirectResponse("/login", status_code=303)(scope, receive, send_with_headers)
            return
        if method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token", "")
            if not same_origin(request) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                await self._refuse(403, "cross-site request refused", scope, receive, send_with_headers)
                return
        scope.setdefault("state", {})
        scope["state"]["session"] = session
        scope["state"]["token"] = token
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(status: int, why: str, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"error": why}, status_code=status)(scope, receive, send)
