"""MQTT: the van listens on its commands topic and answers each message on commands/ack.

Its own client id ({device}-commands) and persistent session: a command sent while the van was offline is
delivered when it is back (and refused then if it has expired). A message is acknowledged to the broker
only after it was handled, so a crash before that means redelivery, and the nonce makes that harmless.
"""

from __future__ import annotations

import json
import logging

from appliance.commands.handler import CommandHandler
from appliance.sync import topics
from appliance.sync.mqtt import MqttConnection, MqttSettings

log = logging.getLogger(__name__)


class CommandListener:
    def __init__(self, settings: MqttSettings, device_id: str, handler: CommandHandler):
        self.device_id = device_id
        self.handler = handler
        self.conn = MqttConnection(settings, on_message=self._on_message,
                                   subscriptions=[(topics.commands(device_id), 1)], ack_after_handling=True)

    @classmethod
    def from_config(cls, config, handler: CommandHandler) -> CommandListener:
        settings = MqttSettings.from_config(config.mqtt, client_id=f"{config.device.id}-commands")
        return cls(settings, config.device.id, handler)

    def start(self, timeout: float = 15.0) -> CommandListener:
        self.conn.connect(timeout)
        return self

    def _on_message(self, message) -> None:
        ack = self.handler.handle(message.payload)
        self.conn.publish(topics.commands_ack(self.device_id), json.dumps(ack), qos=1)

    def stop(self) -> None:
        self.conn.close()
