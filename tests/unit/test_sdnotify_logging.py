"""Logging goes to journald with structured fields under systemd, and to stderr with key=value otherwise."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from appliance.device import logging as devlog


def _record(msg="watchlist applied", **extra):
    logger = logging.getLogger("appliance.test")
    return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, msg, (), None, extra=extra)


def test_stderr_handler_appends_structured_fields(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    handler = devlog.make_handler("auto")
    assert isinstance(handler, logging.StreamHandler)
    text = handler.format(_record(APPLIANCE_EVENT="watchlist_applied", WATCHLIST_VERSION=7, lowercase="no"))
    assert text == (
        "WARNING appliance.test: watchlist applied APPLIANCE_EVENT=watchlist_applied WATCHLIST_VERSION=7"
    )


def test_auto_picks_the_journal_only_when_stderr_is_the_journal(monkeypatch, tmp_path):
    if not devlog.journal_available():
        pytest.skip("systemd-python is not installed here")
    monkeypatch.setattr(sys, "stderr", (tmp_path / "err").open("w"))
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert devlog.stderr_is_journal()
    assert isinstance(devlog.make_handler("auto"), devlog.StructuredJournalHandler)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")  # stderr redirected elsewhere
    assert isinstance(devlog.make_handler("auto"), logging.StreamHandler)


def test_journal_handler_sends_priority_identifier_and_only_explicit_fields(monkeypatch):
    if not devlog.journal_available():
        pytest.skip("systemd-python is not installed here")
    sent: list[tuple[str, dict]] = []
    handler = devlog.make_handler("journal", device_id="van-07")
    monkeypatch.setattr(handler, "send", lambda msg, **fields: sent.append((msg, fields)))
    handler.emit(_record(APPLIANCE_EVENT="watchlist_applied"))
    (msg, fields), = sent
    assert msg == "appliance.test: watchlist applied"
    assert fields["PRIORITY"] == "4"  # warning
    assert fields["SYSLOG_IDENTIFIER"] == "appliance" and fields["APPLIANCE_DEVICE"] == "van-07"
    assert fields["APPLIANCE_EVENT"] == "watchlist_applied"
    assert "ARGS" not in fields and "MSG" not in fields  # not every LogRecord attribute


def test_setup_logging_replaces_root_handlers(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        h = devlog.setup_logging(verbose=True, target="stderr")
        assert root.handlers == [h] and root.level == logging.DEBUG
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    with pytest.raises(ValueError):
        devlog.make_handler("syslog")
