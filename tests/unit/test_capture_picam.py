"""picamera2 is imported only when chosen, and off a Pi choosing it is one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance.capture.sources import open_source
from appliance.errors import CaptureError


def test_picamera2_off_a_pi_is_a_clear_capture_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on a PC: `import picamera2` fails
    with pytest.raises(CaptureError) as e:
        open_source("picamera2:0")
    msg = str(e.value)
    assert msg.startswith("picamera2 is not installed")
    assert "python3-picamera2" in msg and "--system-site-packages" in msg
    assert "\n" not in msg


def test_capture_package_does_not_import_picamera2():
    code = "import sys, appliance.capture.sources; print('picamera2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
