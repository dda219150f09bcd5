"""The in-van console: the officers' web page, served locally by the daemon.

    from appliance.console import ConsoleBackend, ConsoleServer, create_app, store_decision
    backend = ConsoleBackend(events, watchlist, officers, status, store_decision(events, device_id),
                             config.console, device_id=device_id)
    server = ConsoleServer(create_app(backend), config.console.bind, config.console.port).start()

See docs/console.md.
"""

from appliance.console.app import create_app
from appliance.console.backend import ConsoleBackend, store_decision
from appliance.console.server import ConsoleServer

__all__ = ["ConsoleBackend", "ConsoleServer", "create_app", "store_decision"]
