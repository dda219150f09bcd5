"""Logging for the device: journald with structured fields under systemd, stderr otherwise.

Under systemd, messages go to the journal through systemd-python's JournalHandler, so each carries fields a
technician can filter on: `journalctl -u appliance PRIORITY=4`, `journalctl SYSLOG_IDENTIFIER=appliance
APPLIANCE_DEVICE=van-07`, `journalctl APPLIANCE_EVENT=watchlist_applied`. Extra fields come from
`log.info("...", extra={"APPLIANCE_EVENT": "..."})`: upper-case keys only, so the journal is not filled with
every LogRecord attribute. In a shell (or without systemd-python) the same records go to stderr, with the
extra fields appended as key=value.

Never put biometric content (crops, embeddings, names of non-matched people) in a log record.
"""

from __future__ import annotations

import logging
import os
import sys

IDENTIFIER = "appliance"

try:  # optional: sdist-only, compiled on the device against libsystemd-dev
    from systemd import journal as _journal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the machine
    _journal = None


def journal_available() -> bool:
    return _journal is not None


def stderr_is_journal(stream=None) -> bool:
    """True when stderr is connected to journald (systemd sets $JOURNAL_STREAM to its device:inode)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    dev, _, ino = value.partition(":")
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


def _structured(record: logging.LogRecord) -> dict[str, str]:
    # Only explicit upper-case extras become journal fields (e.g. APPLIANCE_EVENT).
    return {k: str(v) for k, v in record.__dict__.items() if k.isupper() and not k.startswith("_")}


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _structured(record)
        return text + "".join(f" {k}={v}" for k, v in sorted(fields.items())) if fields else text


if _journal is not None:

    class StructuredJournalHandler(_journal.JournalHandler):  # type: ignore[misc,name-defined]
        """JournalHandler that sends only our upper-case extras, not every LogRecord attribute."""

        def emit(self, record: logging.LogRecord) -> None:
            try:
                fields = dict(self._extra)
                fields.update(_structured(record))
                if record.exc_info:
                    fields["EXCEPTION_TEXT"] = logging.Formatter().formatException(record.exc_info)
                self.send(
                    self.format(record),
                    PRIORITY=format(self.map_priority(record.levelno)),
                    LOGGER=record.name,
                    THREAD_NAME=record.threadName,
                    CODE_FILE=record.pathname,
                    CODE_LINE=record.lineno,
                    CODE_FUNC=record.funcName,
                    **fields,
                )
            except Exception:
                self.handleError(record)


def make_handler(target: str = "auto", device_id: str | None = None) -> logging.Handler:
    """A handler for `target`: 'journal', 'stderr', or 'auto' (journal when stderr already goes there)."""
    if target not in ("auto", "journal", "stderr"):
        raise ValueError(f"unknown log target {target!r}")
    use_journal = journal_available() and (target == "journal" or (target == "auto" and stderr_is_journal()))
    if use_journal:
        fields = {"SYSLOG_IDENTIFIER": IDENTIFIER}
        if device_id:
            fields["APPLIANCE_DEVICE"] = device_id
        handler: logging.Handler = StructuredJournalHandler(**fields)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_KeyValueFormatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def setup_logging(
    verbose: bool = False, target: str = "auto", device_id: str | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one for `target`; returns it."""
    handler = make_handler(target, device_id)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
