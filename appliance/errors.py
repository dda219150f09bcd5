"""Errors that reach a person: each carries one line that says what went wrong and what to do."""


class ApplianceError(Exception):
    """An expected failure with a one-line, human-readable reason (no stack trace is shown)."""


class ConfigError(ApplianceError):
    """The configuration file is missing, malformed, or out of bounds."""


class ModelError(ApplianceError):
    """A model file is missing, corrupt, or cannot be loaded."""


class CaptureError(ApplianceError):
    """A camera or video source cannot be opened or has gone away."""


class KeyMaterialError(ApplianceError):
    """A key file is missing, unreadable, malformed, or has a mode that lets others read it."""


class StorageError(ApplianceError):
    """An encrypted database cannot be opened (wrong or missing key) or its schema is unusable."""


class WatchlistError(ApplianceError):
    """A watchlist could not be built, verified or applied; the message says why."""


class SyncError(ApplianceError):
    """MQTT transfer failed: broker unreachable, TLS refused, or a transfer did not complete."""
