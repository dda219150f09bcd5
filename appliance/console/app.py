"""The in-van console: a Starlette app the daemon serves (see server.py) for the officers in the van.

    app = create_app(ConsoleBackend(events, watchlist, officers, status, decide, config.console))
    ConsoleServer(app, config.console.bind, config.console.port).start()

Pages: /login, / (the console). API (JSON, all behind a session): /api/alerts, /api/alerts/{id},
/api/alerts/{id}/crop.jpg, /api/alerts/{id}/reference.jpg, POST /api/alerts/{id}/decision, /api/status,
/api/session, POST /api/ping, POST /api/deployment/start, POST /api/deployment/end (only when the backend has
a deployments manager), and /api/stream (server-sent events: alert, decision, status, outbox, deployment, expired).
Everything the page uses is served from here: the van is often offline.

The routes live in appliance/console/routes/, one module per resource; request bodies are the pydantic models
of bodies.py; handlers read the backend, sessions and hub from `request.app.state.console` (context.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from appliance.console.backend import ConsoleBackend
from appliance.console.context import HERE, ConsoleContext
from appliance.console.routes import ROUTES
from appliance.console.security import ConsoleGate, same_origin
from appliance.console.sessions import LoginThrottle, SessionManager
from appliance.console.stream import Hub


def create_app(backend: ConsoleBackend, *, clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The console app. Its state holds `console` (the ConsoleContext every handler reads), and for tests and
    the server the same `backend`, `hub`, `sessions` and `throttle`."""
    cfg = backend.config
    sessions = SessionManager(cfg.session_minutes * 60, cfg.session_max_hours * 3600, clock)
    throttle = LoginThrottle(cfg.max_failed_logins, cfg.lockout_s, clock)
    console = ConsoleContext(backend, sessions, throttle, Hub())
    unsubscribe = backend.events.subscribe(console.on_store_event)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        console.hub.close()
        if callable(unsubscribe):
            unsubscribe()

    app = Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        middleware=[Middleware(ConsoleGate, sessions=sessions, officers=backend.officers)],
        lifespan=lifespan,
    )
    app.state.console = console
    app.state.hub = console.hub
    app.state.sessions = sessions
    app.state.throttle = throttle
    app.state.backend = backend
    return app


__all__ = ["create_app", "same_origin"]
