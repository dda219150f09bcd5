"""The console page itself (the officer's session, CSRF token and which features this van has)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from appliance.console.context import console_of, fill


async def index(request: Request) -> Response:
    ctx = console_of(request)
    s = request.state.session
    return HTMLResponse(fill(ctx.index_html, csrf=s.csrf, officer_id=s.officer_id,
                             officer_name=s.display_name, device_id=ctx.backend.device_id,
                             two_officer="on" if ctx.backend.two_officer else "off",
                             deployments="on" if ctx.backend.deployments is not None else "off"))


routes = [Route("/", index, methods=["GET"])]
