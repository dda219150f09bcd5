"""The peer comparison's own logic: frames that keep the photo's aspect, and one clear line without the peer."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from appliance.devtools.detector_cost import letterbox
from appliance.devtools.peer_compare import compare
from appliance.errors import ApplianceError


def test_letterbox_keeps_the_aspect_and_centres():
    tall = np.full((1000, 500, 3), 255, np.uint8)
    frame = letterbox(tall, 1280, 720)
    assert frame.shape == (720, 1280, 3)
    rows, cols = np.nonzero(frame[..., 0])
    assert (rows.min(), rows.max()) == (0, 719) and cols.max() - cols.min() + 1 == 360
    assert cols.min() == (1280 - 360) // 2


def test_without_the_peer_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_recognition", None)  # import now fails as when not installed
    with pytest.raises(ApplianceError, match="pip install dlib face_recognition"):
        compare([], 0, 1)
