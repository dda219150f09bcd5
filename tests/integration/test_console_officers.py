"""Officer accounts on real SQLCipher: argon2id hashes only, constant-cost refusals, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from appliance.errors import ApplianceError
from appliance.officers import OfficerStore, PinError
from appliance.storage import KeyFileProvider

PIN = "246813"


def test_store_keeps_only_a_hash_and_verifies(tmp_path):
    kp = KeyFileProvider(tmp_path / "keys")
    store = OfficerStore.open(tmp_path, kp)
    store.add("PC1234", PIN, display_name="PC Patel")
    row = store.db.execute("SELECT pin_hash FROM officers WHERE id = 'PC1234'").fetchone()
    assert row[0].startswith("$argon2id$") and PIN not in row[0]
    assert store.verify("PC1234", PIN).display_name == "PC Patel"
    assert store.get("PC1234").last_login_at is not None
    assert store.verify("PC1234", "246814") is None
    assert store.verify("pc1234", PIN) is None  # ids are exact
    assert store.verify("NOBODY", PIN) is None
    with pytest.raises(ApplianceError, match="already exists"):
        store.add("PC1234", "975318")
    store.add("PC1234", "975318", replace=True)
    assert store.verify("PC1234", PIN) is None and store.verify("PC1234", "975318") is not None
    store.disable("PC1234")
    assert store.verify("PC1234", "975318") is None and not store.is_active("PC1234")
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = (tmp_path / "officers.db").read_bytes()
    assert b"PC1234" not in raw and b"argon2" not in raw  # the file is encrypted as a whole


@pytest.mark.parametrize("pin", ["12345", "1234567890123", "12a456", "000000", "123456", "654321", ""])
def test_weak_or_malformed_pins_are_refused(tmp_path, pin):
    store = OfficerStore.open(tmp_path, KeyFileProvider(tmp_path / "keys"))
    with pytest.raises(PinError):
        store.add("PC1", pin)
    assert store.list() == []


def test_unknown_id_costs_as_much_as_a_wrong_pin(tmp_path):
    store = OfficerStore.open(tmp_path, KeyFileProvider(tmp_path / "keys"))
    store.add("PC1", PIN)

    def cost(officer_id):
        t0 = time.perf_counter()
        for _ in range(5):
            store.verify(officer_id, "975318")
        return time.perf_counter() - t0

    cost("PC1")  # warm up
    known, unknown = cost("PC1"), cost("NOBODY")
    assert unknown > 0.5 * known, (known, unknown)


def run_cli(tmp_path, *args, stdin=None):
    config = tmp_path / "appliance.toml"
    config.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n')
    return subprocess.run([sys.executable, "-m", "appliance", "officers", "--config", str(config), *args],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_cli_add_list_disable(tmp_path):
    r = run_cli(tmp_path, "add", "PC1234", "--name", "PC Patel", "--pin-stdin", stdin=PIN + "\n")
    assert r.returncode == 0, r.stderr
    assert "officer PC1234 (PC Patel) added" in r.stdout
    assert PIN not in r.stdout + r.stderr
    r = run_cli(tmp_path, "list")
    assert "PC1234" in r.stdout and "active" in r.stdout and PIN not in r.stdout
    r = run_cli(tmp_path, "add", "PC1234", "--pin-stdin", stdin=PIN + "\n")
    assert r.returncode == 2 and r.stderr.strip() == (
        "appliance officers: error: officer PC1234 already exists (use --reset to set a new PIN)")
    r = run_cli(tmp_path, "add", "PC9", "--pin-stdin", stdin="1234\n")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "6 to 12 digits" in r.stderr
    r = run_cli(tmp_path, "add", "bad id!", "--pin-stdin", stdin=PIN + "\n")
    assert r.returncode == 2 and "bad officer id" in r.stderr
    r = run_cli(tmp_path, "add", "PC9")  # no terminal to prompt on
    assert r.returncode == 2 and "--pin-stdin" in r.stderr
    assert run_cli(tmp_path, "disable", "PC1234").returncode == 0
    r = run_cli(tmp_path, "list", "--json")
    assert '"active": false' in r.stdout
    r = run_cli(tmp_path, "disable", "NOBODY")
    assert r.returncode == 2 and "no officer NOBODY" in r.stderr
    store = OfficerStore.open(tmp_path / "data", KeyFileProvider(tmp_path / "data" / "keys"))
    assert store.verify("PC1234", PIN) is None  # disabled
    assert (tmp_path / "data" / "officers.db").stat().st_mode & 0o077 == 0
