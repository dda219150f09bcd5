"""What every console handler shares, kept on the app's state: the backend, sessions, the login throttle, the
event hub, and the views built from the stores.

    ctx = console_of(request)          # in a handler: the ConsoleContext of this app
"""

from __future__ import annotations

import html
import itertools
import logging
from pathlib import Path
from typing import Any, TypedDict

from starlette.requests import Request

from appliance.console.backend import ConsoleBackend, ConsoleStatus
from appliance.console.sessions import LoginThrottle, SessionManager
from appliance.console.stream import Hub
from appliance.console.views import AlertView, DecisionView, OutboxReading, alert_view, decision_view, outcome_view
from appliance.events.types import Counters
from appliance.message_kinds import ALERT, DECISION, DEPLOYMENT
from appliance.watchlist.types import SubjectRow

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def template(name: str) -> str:
    return (HERE / "templates" / name).read_text(encoding="utf-8")


def fill(text: str, **values: str) -> str:
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", html.escape(v, quote=True))
    return text


class StatusSnapshot(TypedDict):
    """GET /api/status and the stream's `status`: the daemon's status ({"error": ...} when its provider
    failed), the store's counters ({} when they could not be read) and a numbered outbox reading."""

    status: ConsoleStatus | dict[str, Any]
    counters: Counters | dict[str, Any]
    outbox: OutboxReading


class ConsoleContext:
    """One per app. Handlers reach it through `console_of(request)`; nothing here is a closure."""

    def __init__(self, backend: ConsoleBackend, sessions: SessionManager, throttle: LoginThrottle, hub: Hub):
        self.backend = backend
        self.sessions = sessions
        self.throttle = throttle
        self.hub = hub
        self.index_html, self.login_html = template("index.html"), template("login.html")
        # Numbered readings of the outbox backlog. The number is taken BEFORE the count is read, so a reading
        # numbered above a decision's own reading was counted after that decision's commit: the page may take
        # its backlog 0 as "this decision is sent", whatever order the stream and the POST response arrive in.
        self._reading_numbers = itertools.count(1)

    @property
    def events(self):
        return self.backend.events

    @property
    def watchlist(self):
        return self.backend.watchlist

    def audit(self, kind: str, actor: str, **data) -> None:
        if self.backend.audit is not None:
            try:
                self.backend.audit(kind, actor or "-", data)
            except Exception:
                log.exception("console audit hook failed on %s", kind)

    # -- views ----------------------------------------------------------------------------------------
    def _subject_and_photo(self, subject_id: str, cache: dict) -> tuple[SubjectRow | None, bool]:
        if subject_id not in cache:
            subject = self.watchlist.subject(subject_id)
            has_photo = subject is not None and self.watchlist.reference_photo(subject_id) is not None
            cache[subject_id] = (subject, has_photo)
        return cache[subject_id]

    def view(self, alert, decisions: list, cache: dict | None = None) -> AlertView:
        subject, has_photo = self._subject_and_photo(alert["subject_id"], {} if cache is None else cache)
        return alert_view(alert, subject, decisions, has_photo, self.backend.two_officer)

    def decision_with_outcome(self, d) -> DecisionView:
        v = decision_view(d)
        v["outcome"] = outcome_view(self.events.decisions_for(v["alert_id"]), self.backend.two_officer)
        return v

    def outbox_reading(self) -> OutboxReading:
        seq = next(self._reading_numbers)
        try:
            backlog = self.events.outbox_backlog()
        except Exception:
            log.exception("console could not read the outbox backlog")
            backlog = None
        return {"seq": seq, "backlog": backlog}

    def status_snapshot(self) -> StatusSnapshot:
        outbox = self.outbox_reading()
        try:
            status: ConsoleStatus | dict[str, Any] = dict(self.backend.status() or {})
        except Exception:
            log.exception("console status provider failed")
            status = {"error": "status unavailable"}
        try:
            counters: Counters | dict[str, Any] = self.events.counters()
        except Exception:
            log.exception("console counters failed")
            counters = {}
        return {"status": status, "counters": counters, "outbox": outbox}

    # -- the store's writer threads -> open pages -------------------------------------------------------
    def on_store_event(self, kind: str, data) -> None:
        try:
            if kind == ALERT.name:
                self.hub.publish("alert", self.view(data, []))  # just committed: no decision yet
            elif kind == DECISION.name:
                self.hub.publish("decision", self.decision_with_outcome(data))
            elif kind == "outbox" and self.hub.clients():  # rows were sent: a fresh, numbered reading
                self.hub.publish("outbox", self.outbox_reading())
            elif kind == DEPLOYMENT.name:
                self.hub.publish("deployment", {})  # the page refreshes its status strip
        except Exception:  # never disturb the writer
            log.exception("console could not forward a %s event", kind)


def console_of(request: Request) -> ConsoleContext:
    return request.app.state.console
