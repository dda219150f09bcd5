"""A watchlist applied while the van is live: the tracks are flushed by the frame loop, between frames.

The watchlist arrives on the MQTT sync thread. FrameProcessor is not thread-safe, so that thread only asks
for the flush; the frame loop does it before its next frame. The deployment's counts go on (a new list is
not a new deployment), unlike a deployment start, which rebaselines them.
"""

from __future__ import annotations

import threading
import time

import pytest
from daemon_env import make_street, provision_van

from appliance.daemon.frames import FrameProcessor
from appliance.daemon.service import Appliance


@pytest.fixture(scope="module")
def street(tmp_path_factory, lfw_dir, crowd_dir):
    return make_street(tmp_path_factory.mktemp("street"), lfw_dir, crowd_dir, ["Abdullah_Gul", "*Alan_Ball"])


def test_watchlist_swap_flushes_tracks_in_the_frame_loop(tmp_path, tls_broker, pipeline, lfw_dir, street,
                                                         monkeypatch):
    van = provision_van(tmp_path, tls_broker, pipeline, lfw_dir, street, loop=True, distractors=2)
    van.start_deployment()
    app = Appliance(van.config(), van.config_path, with_mqtt=False, with_console=False)
    resets: list[str] = []
    real_reset = FrameProcessor.reset

    def recording_reset(self) -> None:
        resets.append(threading.current_thread().name)
        real_reset(self)

    monkeypatch.setattr(FrameProcessor, "reset", recording_reset)
    try:
        app.start()
        deadline = time.monotonic() + 60
        while app.counters.snapshot().get("frames", 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = app.safeguards.deployments.status()
        frames_before = app.counters.snapshot()["frames"]
        resets.clear()
        app._on_watchlist_applied(app.watchlist)  # as the sync thread calls it, from another thread
        assert resets == [], "the sync thread reset the tracks itself, racing the frame loop"
        deadline = time.monotonic() + 10
        while not resets and time.monotonic() < deadline:
            time.sleep(0.05)
        assert resets == ["frames"], resets
        assert app.safeguards.deployments.status() == before  # same deployment
        assert app.counters.snapshot()["frames"] >= frames_before  # its counts go on
    finally:
        app.stop()
