"""MQTT v5 over TLS with client certificates: connection helpers, topics, chunked bundle transfer."""
