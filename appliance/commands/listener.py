"""MQTT: the van listens on its commands topic and answers each message on commands/ack.

Its own client id ({device}-commands) and persistent session: a command sent while the van was offline is
delivered when it is back (and refused then if it has expired). A message is acknowledged to the broker
only after it was handled, so a crash before that means redelivery, and the nonce makes that harmless.
The first connection is retried in the background (the van starts without a broker); after that paho
reconnects by itself.
"""

from __future__ import annotations

import json
import logging
import threading

from appliance.commands.handler import CommandHandler
from appliance.errors import SyncError
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings

log = logging.getLogger(__name__)


class CommandListener:
    def __init__(self, settings: MqttSettings | None, device_id: str, handler: CommandHandler, *,
                 retry_max_s: float = 30, conn: MqttConnection | None = None):
        """conn: the van's one shared connection (the daemon's; it connects and closes it). Without it the
        listener owns a connection of its own made from `settings`."""
        self.device_id = device_id
        self.handler = handler
        self.retry_max_s = retry_max_s
        self._shared = conn is not None
        if conn is not None:
            conn.attach(topics.commands(device_id), self._on_message)
            self.conn = conn
        else:
            self.conn = MqttConnection(settings, on_message=self._on_message,
                                       subscriptions=[(topics.commands(device_id), 1)], ack_after_handling=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._up = False

    @classmethod
    def from_config(cls, config, handler: CommandHandler, conn: MqttConnection | None = None) -> CommandListener:
        if conn is not None:
            return cls(None, config.device.id, handler, conn=conn)
        settings = MqttSettings.from_config(config.mqtt, client_id=f"{config.device.id}-commands")
        return cls(settings, config.device.id, handler)

    def start(self, timeout: float = 15.0) -> CommandListener:
        """Connect now if the broker answers within `timeout`; otherwise keep trying in the background."""
        if self._shared:
            return self
        try:
            self.conn.connect(timeout)
            self._up = True
        except SyncError as e:
            log.warning("commands: %s; retrying in the background", e)
            self._thread = threading.Thread(target=self._retry, name="commands-connect", daemon=True)
            self._thread.start()
        return self

    def _retry(self) -> None:
        backoff = 1.0
        while not self._stop.wait(backoff):
            try:
                self.conn.connect()
                self._up = True
                log.info("commands: connected; listening on %s", topics.commands(self.device_id))
                return
            except SyncError:
                backoff = min(backoff * 2, self.retry_max_s)

    def wait_connected(self, timeout: float) -> bool:
        return self.conn.wait_connected(timeout)

    def _on_message(self, message) -> None:
        ack = self.handler.handle(message.payload)
        self.conn.publish(topics.commands_ack(self.device_id), json.dumps(ack), qos=1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._up and not self._shared:
            self.conn.close()
