"""The message-kind registry is complete: every kind has its schema files, every schema file is a kind's
(or a listed document's), and what the stores, receivers and topics use is derived from it."""

from __future__ import annotations

import json

import pytest

from appliance import message_kinds as kinds
from appliance.events.schemas import SCHEMAS, TOPIC_KIND
from appliance.events.store import TOPICS
from appliance.paths import PROJECT_ROOT
from appliance.sync import topics
from appliance.watchlist.schemas import SCHEMA_DIR


def _files() -> set[str]:
    return {p.stem for p in SCHEMA_DIR.glob("*.json")}


@pytest.mark.parametrize("kind", kinds.KINDS, ids=lambda k: k.name)
def test_every_kind_has_its_schema_files_and_they_name_it(kind):
    assert kind.schemas, f"{kind.name} has no schema"
    for name, stem in kind.schemas:
        path = SCHEMA_DIR / f"{stem}.json"
        assert path.exists(), f"{kind.name}: {path.name} is missing"
        # The payload's own `schema` field is pinned to the value the registry gives it.
        assert json.loads(path.read_text())["properties"]["schema"] == {"const": name}


def test_every_schema_file_is_a_kind_or_a_listed_document():
    used = {stem for k in kinds.KINDS for _, stem in k.schemas} | set(kinds.DOCUMENTS)
    assert _files() == used, f"not in the registry: {_files() - used}; no file: {used - _files()}"


def test_names_topics_and_schema_values_are_unique():
    for attr in ("name", "topic"):
        values = [getattr(k, attr) for k in kinds.KINDS]
        assert len(values) == len(set(values)), attr
    values = [name for k in kinds.KINDS for name, _ in k.schemas]
    assert len(values) == len(set(values))
    assert {k.sender for k in kinds.KINDS} == {kinds.VAN, kinds.CONTROL_ROOM}


def test_what_the_stores_and_receivers_use_comes_from_the_registry():
    assert TOPICS == ("alerts", "decisions", "deployments")  # the outbox kinds, in their historic order
    assert TOPIC_KIND["alerts"] == ("lfr.alert/2", "lfr.alert/1")
    assert set(SCHEMAS) == {name for k in kinds.KINDS if not k.binary for name, _ in k.schemas}
    assert all(k.sender == kinds.VAN for k in kinds.OUTBOX_KINDS)
    assert kinds.by_topic("alerts") is kinds.ALERT and kinds.by_topic("nothing") is None
    assert topics.alerts("van-01") == topics.topic("van-01", kinds.ALERT.topic) == "lfr/v1/devices/van-01/alerts"


def test_the_broker_acl_lets_exactly_each_kinds_sender_publish_it():
    """deploy/mosquitto/lfr.acl spells the topics once more (the broker cannot read Python): it must agree."""
    acl = (PROJECT_ROOT / "deploy" / "mosquitto" / "lfr.acl").read_text().splitlines()
    rules = set()
    for line in acl:
        if line.startswith(("topic ", "pattern ")):
            who, access, topic = line.split()[:3]
            rules.add((who, access, topic.split("/", 4)[-1]))  # lfr/v1/devices/<+ or %u>/<suffix>
    for k in kinds.KINDS:
        writer, reader = ("pattern", "topic") if k.sender == kinds.VAN else ("topic", "pattern")
        assert (writer, "write", k.topic) in rules, f"{k.sender} may not publish {k.topic}"
        assert (reader, "read", k.topic) in rules, f"nobody reads {k.topic}"
    assert len(rules) == 2 * len(kinds.KINDS), "the ACL names a topic that is no kind's"
