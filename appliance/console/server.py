"""Serve the console with uvicorn in a thread of the daemon (the hot path never waits on HTTP)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import uvicorn

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)


class ConsoleServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 8080, *,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        self.app = app
        self.host = host
        self.https = tls_cert is not None
        self._config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
            lifespan="on", timeout_graceful_shutdown=3,
            ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        )
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when configured as 0)."""
        for s in self._server.servers:
            for sock in s.sockets:
                return int(sock.getsockname()[1])
        return self._config.port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> ConsoleServer:
        """Start serving; returns once the socket listens. Raises ApplianceError if it cannot."""
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise ApplianceError(f"the console cannot listen on {self.host}:{self._config.port} "
                                     "(address in use, or not an address of this device?)")
            time.sleep(0.02)
        log.info("console listening on %s", self.url)
        return self

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits on a bind error; start() reports it
            self._server.run()

    def stop(self, timeout: float = 10.0) -> None:
        hub = getattr(getattr(self.app, "state", None), "hub", None)
        if hub is not None:
            hub.close()  # end the open event streams, or shutdown waits for them
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
