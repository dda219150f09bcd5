"""Errors that reach a person: each carries one line that says what went wrong and what to do."""


class ApplianceError(Exception):
    """An expected failure with a one-line, human-readable reason (no stack trace is shown)."""


class ConfigError(ApplianceError):
    """The configuration file is missing, malformed, or out of bounds."""


class ModelError(ApplianceError):
    """A model file is missing, corrupt, or cannot be loaded."""


class CaptureError(ApplianceError):
    """A camera or video source cannot be opened or has gone away."""
