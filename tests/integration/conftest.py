"""Integration fixtures: a real TLS Mosquitto (tests/integration/mosquitto_fixtures.py)."""

from __future__ import annotations

import pytest
from mosquitto_fixtures import TlsBroker, tls_broker_or_skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory) -> TlsBroker:
    """A TLS broker with client certificates and the deployed ACL, on a free port, for one test module."""
    broker = tls_broker_or_skip(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


# -- watchlist fixtures (keys, real LFW entries) -------------------------------------------------------
LFW_SUBJECTS = ("Aaron_Peirsol", "Abdullah_Gul", "Adam_Sandler", "Adrien_Brody", "Ahmed_Chalabi")


@pytest.fixture(scope="session")
def watchlist_keys(tmp_path_factory):
    """Key files: the control room's signing pair, a rogue signing pair, and device keys for van-01/van-02."""
    from appliance.keys.keypairs import generate_control_room, generate_device

    d = tmp_path_factory.mktemp("keys")
    generate_control_room(d)
    generate_control_room(d, "rogue")
    for dev in ("van-01", "van-02"):
        generate_device(d, dev)
    return d


@pytest.fixture(scope="session")
def lfw_watchlist(lfw_dir, pipeline):
    """Entries for a handful of LFW subjects (enrolled from their first photo) and a probe photo of each."""
    import cv2

    from appliance.watchlist.enrol import enrol_subjects
    from appliance.watchlist.timeutil import iso, utcnow

    expires = iso(utcnow().replace(year=utcnow().year + 1))
    photos = {name: sorted((lfw_dir / name).glob("*.jpg")) for name in LFW_SUBJECTS}
    subjects = [
        {"meta": {"id": f"S-{i:03d}", "display_name": name.replace("_", " "), "category": "wanted",
                  "legal_basis": "test warrant", "image_source": "LFW", "expires_at": expires},
         "photos": [f"{name}/{photos[name][0].name}"]}
        for i, name in enumerate(LFW_SUBJECTS)
    ]
    entries, refusals = enrol_subjects(subjects, lfw_dir, pipeline, now=utcnow())
    assert not refusals, [str(r) for r in refusals]
    probes = {f"S-{i:03d}": cv2.imread(str(photos[name][1])) for i, name in enumerate(LFW_SUBJECTS)}
    return entries, probes
