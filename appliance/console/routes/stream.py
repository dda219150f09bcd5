"""/api/stream: server-sent events (alert, decision, status, outbox, deployment, expired) for one open page."""

from __future__ import annotations

import asyncio
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from appliance.console.context import console_of
from appliance.console.stream import CLOSE, sse

STATUS_EVERY_S = 2.0  # the stream pushes the status strip this often (no polling by the page)


async def stream(request: Request) -> Response:
    ctx = console_of(request)
    token = request.state.token
    officer_id = request.state.session.officer_id
    client = ctx.hub.attach()

    async def still_valid() -> bool:
        return (ctx.sessions.get(token, touch=False) is not None
                and await run_in_threadpool(ctx.backend.officers.is_active, officer_id))

    async def events_out():
        try:
            yield "retry: 2000\n\n"
            yield sse("status", await run_in_threadpool(ctx.status_snapshot))
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
                yield sse("status", await run_in_threadpool(ctx.status_snapshot))
                next_status = time.monotonic() + STATUS_EVERY_S
        finally:
            ctx.hub.detach(client)

    return StreamingResponse(events_out(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


routes = [Route("/api/stream", stream, methods=["GET"])]
