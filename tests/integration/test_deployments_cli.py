"""`appliance deployment start|status|end|list` on a provisioned data dir (real SQLCipher, real manifest)."""

from __future__ import annotations

import json

from accountability_helpers import provision_device

from appliance.cli.main import main


def test_start_status_end(tmp_path, capsys):
    _, cfg, _ = provision_device(tmp_path, deployment={"wipe_watchlist_on_end": True})
    start = ["deployment", "start", "--config", str(cfg), "--officer", "Insp-77", "--purpose", "Wanted offenders",
             "--location", "Market Square", "--lat", "52.2", "--lon", "0.12", "--dpia", "DPIA-9", "--hours", "2"]
    assert main([*start, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["source"] == "cli" and rec["watchlist"]["subjects"] == 4 and rec["model"]["id"] == "mobilefacenet-int8"
    assert main(start) == 2
    assert "is active; end it first" in capsys.readouterr().err
    assert main(["deployment", "status", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert rec["id"] in out and "Insp-77" in out and "DPIA-9" in out
    assert main(["deployment", "end", "--config", str(cfg), "--officer", "Insp-77"]) == 0
    assert "(officer, by Insp-77)" in capsys.readouterr().out
    assert main(["deployment", "status", "--config", str(cfg)]) == 0
    assert "no deployment is active" in capsys.readouterr().out
    # wipe_watchlist_on_end: the next start has no list to run with.
    assert main(start) == 2
    assert "no watchlist is loaded" in capsys.readouterr().err
    assert main(["deployment", "list", "--config", str(cfg)]) == 0
    assert rec["id"] in capsys.readouterr().out
    assert main(["audit", "verify", "--config", str(cfg)]) == 0
    assert "OK: 3 entries" in capsys.readouterr().out  # started, ended, watchlist.erased


def test_refusals_are_one_line(tmp_path, capsys):
    _, cfg, _ = provision_device(tmp_path, n_subjects=0)
    base = ["deployment", "start", "--config", str(cfg), "--officer", "X", "--purpose", "p", "--location", "l",
            "--dpia", "D"]
    assert main([*base, "--hours", "2"]) == 2
    assert "no watchlist is loaded" in capsys.readouterr().err
    assert main([*base, "--until", "yesterday"]) == 2
    assert "is not a time" in capsys.readouterr().err
    assert main(["deployment", "end", "--config", str(cfg), "--officer", "X"]) == 2
    assert "no deployment is active" in capsys.readouterr().err
