"""The committed lock agrees with pyproject.toml, and the check notices when it does not."""

from __future__ import annotations

import copy

import pytest

from appliance.devtools import lockfiles


def test_the_committed_lock_agrees_with_pyproject():
    assert lockfiles.problems() == []


def test_a_changed_dependency_is_a_stale_lock(monkeypatch):
    changed = copy.deepcopy(lockfiles._pyproject())
    changed["project"]["dependencies"].append("rich>=13")
    monkeypatch.setattr(lockfiles, "_pyproject", lambda: changed)
    found = lockfiles.problems()
    assert any("dependencies changed: run `make lock`" in p for p in found)
    assert any("rich is required by pyproject.toml but not locked" in p for p in found)


def test_a_pin_outside_the_specifier_is_reported(monkeypatch, tmp_path):
    for plat in lockfiles.PLATFORMS:
        for device in (False, True):
            src = lockfiles.lock_path(plat, device)
            (tmp_path / src.name).write_text(src.read_text().replace("\nnumpy==1.26.4", "\nnumpy==2.4.6"))
    pyproject = lockfiles._pyproject()
    monkeypatch.setattr(lockfiles, "_pyproject", lambda: pyproject)
    monkeypatch.setattr(lockfiles, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(lockfiles, "EXTRA_CONSTRAINTS", lockfiles.EXTRA_CONSTRAINTS)
    monkeypatch.setattr(lockfiles, "PROJECT_ROOT", tmp_path.parent)
    found = lockfiles.problems()
    assert any("numpy==2.4.6 does not satisfy" in p for p in found), found


def test_every_pin_has_a_hash_and_the_device_lock_matches_the_full_one():
    for plat in lockfiles.PLATFORMS:
        full = lockfiles.read_pins(lockfiles.lock_path(plat))
        device = lockfiles.read_pins(lockfiles.lock_path(plat, device=True))
        assert all(n >= 1 for _, n in full.values())
        assert set(device) < set(full)
        assert all(full[k][0] == v for k, (v, _) in device.items())


def test_this_machine_has_a_lock_or_a_clear_error(monkeypatch):
    monkeypatch.setattr(lockfiles.platform, "machine", lambda: "riscv64")
    with pytest.raises(SystemExit, match="no lock for linux-riscv64"):
        lockfiles.this_platform()
