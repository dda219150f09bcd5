"""Connect to the broker with paho-mqtt 2.x: MQTT v5, TLS with a client certificate, persistent session.

    settings = MqttSettings.from_config(config.mqtt, client_id=config.device.id)
    conn = MqttConnection(settings, on_message=handle, subscriptions=[(topic, 1)])
    conn.connect()          # waits for CONNACK; one clear SyncError line if TLS or auth fails
    conn.publish(topic, payload, qos=1).wait(timeout)
    conn.close()

paho's network thread reconnects by itself; the session (clean_start = false, with an expiry) keeps the
subscriptions and the QoS 1 messages queued while we were away.
"""

from __future__ import annotations

import collections
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.errors import KeyMaterialError, SyncError
from appliance.keys.files import check_private
from appliance.sync.broker_url import parse_broker_url

log = logging.getLogger(__name__)
DEAD_LETTERS_KEPT = 100


class RetryLater(Exception):
    """Raised by an on_message handler for a transient failure (e.g. the disk is full): the message is not
    acknowledged, so the broker delivers it again after the next reconnect. Any other exception dead-letters
    the message: it is acknowledged, counted and logged in one line, and never blocks the ones after it."""


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600

    @classmethod
    def from_url(cls, url: str, client_id: str, **kw) -> MqttSettings:
        b = parse_broker_url(url)
        return cls(host=b.host, port=b.port, client_id=client_id, tls=b.tls, **kw)

    @classmethod
    def from_config(cls, mqtt_config, client_id: str, **overrides) -> MqttSettings:
        kw = dict(ca_file=mqtt_config.ca_file, cert_file=mqtt_config.cert_file, key_file=mqtt_config.key_file,
                  keepalive_s=mqtt_config.keepalive_s, session_expiry_s=mqtt_config.session_expiry_s)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_url(mqtt_config.broker, client_id, **kw)


class Delivery:
    """A QoS 1 publish in flight: wait() returns once the broker has PUBACKed it, or raises SyncError."""

    def __init__(self, info: mqtt.MessageInfo, conn: MqttConnection):
        self.info = info
        self.conn = conn

    def wait(self, timeout: float = 30.0) -> None:
        try:
            self.info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as e:
            raise SyncError(f"publish failed: {e}") from None
        if not self.info.is_published():
            raise SyncError(f"the broker did not acknowledge a publish within {timeout:.0f} s")
        rc = self.conn.puback_reason(self.info.mid)
        if rc is not None and rc.is_failure:
            raise SyncError(f"the broker refused the publish: {rc}")


class MqttConnection:
    def __init__(
        self,
        settings: MqttSettings,
        *,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        subscriptions: list[tuple[str, int]] = (),
        clean_start: bool = False,
        receive_maximum: int | None = None,
        on_publish: Callable[[int, object], None] | None = None,
        on_link: Callable[[bool, bool], None] | None = None,
        will: tuple[str, bytes | str, int, bool] | None = None,
        ack_after_handling: bool = False,
    ):
        """on_publish(mid, reason_code): a QoS 1 publish was acknowledged (PUBACK), in paho's thread.
        on_link(up, session_present): after every CONNACK (up=True) and every disconnect (up=False).
        will: (topic, payload, qos, retain) the broker publishes if we vanish without a clean disconnect."""
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._routes: list[tuple[str, Callable[[mqtt.MQTTMessage], None]]] = []
        self._publish_listeners = [on_publish] if on_publish is not None else []
        self._link_listeners = [on_link] if on_link is not None else []
        self._clean_start = clean_start
        self._connected = threading.Event()
        self._connack_event = threading.Event()  # the first connect attempt has an outcome
        self._awaiting_connack = False
        self._connack_error: str | None = None
        self._suback: dict[int, list] = {}
        self._suback_event = threading.Condition()
        self._puback: dict[int, object] = {}
        self.session_present = False
        self.dead_letters = 0  # messages a handler failed on: acknowledged, logged, never retried
        self.last_dead_letters: collections.deque[tuple[str, str]] = collections.deque(maxlen=DEAD_LETTERS_KEPT)
        # ack_after_handling: a QoS 1 message is PUBACKed only once on_message returned without an error
        # (e.g. the chunk is on disk); otherwise the broker redelivers it after the next reconnect.
        self._manual_ack = ack_after_handling
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5,
                        manual_ack=ack_after_handling)
        if settings.tls:
            for what, p in (("CA certificate", settings.ca_file), ("client certificate", settings.cert_file),
                            ("client key", settings.key_file)):
                if p is None:
                    raise SyncError(f"TLS needs a {what} (mqtt.ca_file, mqtt.cert_file, mqtt.key_file)")
                if not Path(p).exists():
                    raise SyncError(f"{what} {p} not found")
            try:
                check_private(settings.key_file)
            except KeyMaterialError as e:
                raise SyncError(str(e)) from None
            try:
                c.tls_set(ca_certs=str(settings.ca_file), certfile=str(settings.cert_file),
                          keyfile=str(settings.key_file), cert_reqs=ssl.CERT_REQUIRED,
                          tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (ssl.SSLError, OSError, ValueError) as e:
                raise SyncError(f"cannot load the TLS certificates: {e}") from None
        if will is not None:
            c.will_set(will[0], will[1], qos=will[2], retain=will[3])
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        c.on_subscribe = self._handle_subscribe
        c.on_publish = self._handle_publish
        self._receive_maximum = receive_maximum
        self.client = c

    # -- callbacks (paho's network thread) ------------------------------------------------------------
    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._awaiting_connack = False
        if reason_code.is_failure:
            self._connack_error = str(reason_code)
            self._connack_event.set()
            return
        self.session_present = bool(getattr(flags, "session_present", False))
        self._connack_error = None
        log.info("MQTT connected to %s:%d as %s (session present: %s)", self.settings.host, self.settings.port,
                 self.settings.client_id, self.session_present)
        # Re-subscribe on every connect: harmless if the session kept them, needed if it expired.
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos=qos)
        self._connected.set()
        self._connack_event.set()
        self._link(True)

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._awaiting_connack:
            # Closed before CONNACK: with TLS 1.3 a rejected client certificate shows up only here.
            self._connack_error = f"connection closed before CONNACK ({reason_code}); is the client certificate " \
                                  "issued by the broker's CA?"
            self._awaiting_connack = False
            self._connack_event.set()
            return
        self._connected.clear()
        log.info("MQTT disconnected: %s", reason_code)
        self._link(False)

    def _link(self, up: bool) -> None:
        for listener in list(self._link_listeners):
            try:
                listener(up, self.session_present if up else False)
            except Exception:
                log.exception("error in the MQTT link callback")

    def _handler_for(self, topic: str) -> Callable[[mqtt.MQTTMessage], None] | None:
        for pattern, handler in self._routes:
            if mqtt.topic_matches_sub(pattern, topic):
                return handler
        return self._on_message

    def _ours(self, topic: str) -> bool:
        return any(mqtt.topic_matches_sub(pattern, topic) for pattern, _ in self.subscriptions)

    def _handle_message(self, client, userdata, message) -> None:
        if self._manual_ack and self.subscriptions and not self._ours(message.topic):
            # A van has one session (one client id per certificate): a tool resuming it (`appliance watchlist
            # receive`) also gets what the daemon subscribed to. Leave that unacknowledged, so the broker
            # delivers it again to the daemon's next connection, rather than lose a command.
            log.warning("message on %s is not for this client; left for the session's owner", message.topic)
            return
        handler = self._handler_for(message.topic)
        if handler is None:
            if self._manual_ack and message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        try:
            handler(message)
        except RetryLater as e:
            log.warning("message on %s not acknowledged, the broker will deliver it again: %s", message.topic, e)
            return
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            self.dead_letters += 1
            reason = f"{type(e).__name__}: {str(e)[:200]}"
            self.last_dead_letters.append((message.topic, reason))
            log.error("dead-lettered a message on %s (%d bytes): %s", message.topic, len(message.payload or b""),
                      reason)
        if self._manual_ack and message.qos > 0:
            client.ack(message.mid, message.qos)

    def _handle_subscribe(self, client, userdata, mid, reason_code_list, properties) -> None:
        with self._suback_event:
            self._suback[mid] = list(reason_code_list)
            self._suback_event.notify_all()

    def _handle_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._puback[mid] = reason_code
        for listener in list(self._publish_listeners):
            try:
                listener(mid, reason_code)
            except Exception:
                log.exception("error in the MQTT publish callback")
        if len(self._puback) > 10000:  # bounded: only recent reasons are asked for
            for k in list(self._puback)[:5000]:
                self._puback.pop(k, None)

    # -- sharing one connection (a van has one: the broker binds its client id to its certificate) ------
    def attach(self, topic: str, handler: Callable[[mqtt.MQTTMessage], None], qos: int = 1) -> None:
        """Route messages on `topic` (a filter) to `handler`, and subscribe to it on every connect."""
        self._routes.append((topic, handler))
        if (topic, qos) not in self.subscriptions:
            self.subscriptions.append((topic, qos))
        if self.connected:
            self.client.subscribe(topic, qos=qos)

    def add_publish_listener(self, listener: Callable[[int, object], None]) -> None:
        self._publish_listeners.append(listener)

    def add_link_listener(self, listener: Callable[[bool, bool], None]) -> None:
        self._link_listeners.append(listener)

    def connect_in_background(self, stop: threading.Event, *, timeout: float = 15.0, retry_max_s: float = 30.0,
                              name: str = "mqtt-connect") -> None:
        """Connect now if the broker answers; otherwise keep trying in a thread until `stop` is set (a van
        starts without a broker). After the first CONNACK paho reconnects by itself."""
        try:
            self.connect(timeout)
            return
        except SyncError as e:
            log.warning("MQTT: %s; retrying in the background", e)

        def retry() -> None:
            backoff = 1.0
            while not stop.wait(backoff):
                try:
                    self.connect(timeout)
                    return
                except SyncError:
                    backoff = min(backoff * 2, retry_max_s)

        threading.Thread(target=retry, name=name, daemon=True).start()

    # -- API --------------------------------------------------------------------------------------------
    def connect(self, timeout: float = 15.0) -> MqttConnection:
        s = self.settings
        self._connack_event.clear()
        self._connack_error = None
        self._awaiting_connack = True
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        if self._receive_maximum:
            props.ReceiveMaximum = self._receive_maximum
        try:
            self.client.connect(s.host, s.port, keepalive=s.keepalive_s, clean_start=self._clean_start,
                                properties=props)
        except ssl.SSLError as e:
            raise SyncError(f"TLS with {s.host}:{s.port} failed: {e.reason or e}") from None
        except OSError as e:
            raise SyncError(f"cannot reach the broker at {s.host}:{s.port}: {e.strerror or e}") from None
        self.client.loop_start()
        if not self._connack_event.wait(timeout):
            self.close()
            raise SyncError(f"no answer from the broker at {s.host}:{s.port} within {timeout:.0f} s")
        if self._connack_error:
            err = self._connack_error
            self.close()
            raise SyncError(f"the broker at {s.host}:{s.port} refused the connection: {err}")
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> None:
        """Subscribe and wait for the SUBACK; raises SyncError if the broker refuses (e.g. the ACL)."""
        rc, mid = self.client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise SyncError(f"subscribe to {topic} failed: {mqtt.error_string(rc)}")
        with self._suback_event:
            if not self._suback_event.wait_for(lambda: mid in self._suback, timeout):
                raise SyncError(f"no SUBACK for {topic} within {timeout:.0f} s")
            codes = self._suback.pop(mid)
        if any(c.is_failure for c in codes):
            raise SyncError(f"the broker refused the subscription to {topic}: {codes[0]}")
        if (topic, qos) not in self.subscriptions:
            self.subscriptions.append((topic, qos))

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> Delivery:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps QoS 1 messages and sends them after it reconnects.
            raise SyncError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        return Delivery(info, self)

    def puback_reason(self, mid: int):
        return self._puback.get(mid)

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
