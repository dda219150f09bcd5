"""The console's routes, one module per resource: auth (login, logout, session, ping), page (the console
itself), alerts (list, one, images, decision), deployments (start, end), status and stream (server-sent events).
Each module has `routes`; handlers read everything from `console_of(request)` (appliance/console/context.py).
"""

from appliance.console.routes import alerts, auth, deployments, page, status, stream

ROUTES = [*auth.routes, *page.routes, *status.routes, *stream.routes, *alerts.routes, *deployments.routes]

__all__ = ["ROUTES"]
