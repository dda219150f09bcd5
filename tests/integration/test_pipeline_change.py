"""A van whose pixel pipeline is not the calibrated one says so: a real second OpenCV, not a pretend version.

OpenCV 4.10 (one minor version from the lock's 4.11) is installed into a folder of its own and put first on
PYTHONPATH, so `appliance selftest` really decodes, resizes and warps with it. The check must fail and name
the library with both versions; with the locked OpenCV it passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OTHER_OPENCV = "opencv-python-headless==4.10.0.84"


@pytest.fixture(scope="module")
def other_opencv(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("opencv410")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--target", str(target), OTHER_OPENCV],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return target


def _selftest(tmp_path: Path, pythonpath: Path | None = None) -> dict:
    config = tmp_path / "appliance.toml"
    config.write_text(f"[device]\ndata_dir = '{tmp_path / 'data'}'\n")
    env = {**os.environ}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    r = subprocess.run([sys.executable, "-m", "appliance", "selftest", "--config", str(config), "--only", "pipeline",
                        "--json"], capture_output=True, text=True, env=env, timeout=300)
    return json.loads(r.stdout)


def test_the_locked_pipeline_passes(tmp_path):
    (check,) = _selftest(tmp_path)["checks"]
    assert check["status"] == "pass", check["reason"]
    assert "was calibrated on this pipeline" in check["reason"]


def test_another_opencv_is_reported_as_a_change_of_pipeline(tmp_path, other_opencv):
    report = _selftest(tmp_path, other_opencv)
    (check,) = report["checks"]
    assert report["failed"] == ["pipeline"]
    assert "opencv 4.10.0 (calibrated with 4.11.0)" in check["reason"], check["reason"]
    assert "install from the lock or recalibrate" in check["reason"]


def test_the_daemon_warns_in_status_console_and_audit(tmp_path, crowd_dir):
    """The running daemon on a manifest calibrated with another OpenCV: a warning in the retained status, on the
    console, in systemd's STATUS and one audit entry; with the calibrated pipeline, none of them."""
    from accountability_helpers import provision_device

    from appliance.audit.chain import iter_entries
    from appliance.daemon.service import Appliance
    from appliance.paths import models_dir

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    import tomli_w

    models = tmp_path / "models"
    models.mkdir()
    for sub in models_dir().iterdir():
        if sub.is_dir():
            (models / sub.name).symlink_to(sub)
    manifest = tomllib.loads((models_dir() / "manifest.toml").read_text())
    evidence = manifest["models"]["mobilefacenet-int8"]["calibration"]["evidence"]
    running_opencv = evidence["pipeline"]["opencv"]
    evidence["pipeline"]["opencv"] = "4.10.0"
    (models / "manifest.toml").write_text(tomli_w.dumps(manifest))

    for models_root, expect_warning in ((models, True), (models_dir(), False)):
        run = tmp_path / ("changed" if expect_warning else "calibrated")
        run.mkdir()
        config, cfg_path, _ = provision_device(run, n_subjects=0, models={"dir": f'"{models_root}"'})
        app = Appliance(config, cfg_path, source=str(crowd_dir), with_mqtt=False, with_console=False)
        app.build()
        try:
            app._update_status()
            payload = app.status.payload()
            console = app.console_status()
            kinds = [e.kind for e in iter_entries(app.events.db)]
        finally:
            app.events.close()
            app.watchlist.close()
        if expect_warning:
            (warning,) = app.pipeline_warnings
            assert f"opencv {running_opencv} (calibrated with 4.10.0)" in warning
            assert payload["warnings"] == [warning] and console["warnings"] == [warning]
            assert kinds.count("pipeline.changed") == 1
        else:
            assert app.pipeline_warnings == [] and "warnings" not in payload and console["warnings"] == []
            assert "pipeline.changed" not in kinds
