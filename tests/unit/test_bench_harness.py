"""`python -m appliance.bench --quick` runs end to end and writes bench.json and bench.md with the expected
keys. Figures are not checked: a benchmark measures, it does not pass or fail on speed."""

from __future__ import annotations

import json

from appliance.bench.__main__ import main

BACKENDS = {"numpy", "usearch", "faiss", "usearch-hnsw", "faiss-hnsw"}


def test_quick_search_bench_writes_json_and_markdown(tmp_path):
    assert main(["--out", str(tmp_path), "--quick", "--only", "search"]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())

    assert {"cpu", "cores", "python", "packages"} <= result["machine"].keys()
    assert {"numpy", "ai-edge-litert", "usearch", "faiss-cpu"} <= result["machine"]["packages"].keys()
    assert result["quick"] is True
    assert "stages" not in result

    sizes = result["search"]["sizes"]
    assert [s["gallery"] for s in sizes] == [500, 2000]
    for size in sizes:
        assert {b["backend"] for b in size["backends"]} == BACKENDS
        for b in size["backends"]:
            assert {"build_s", "index_mb", "runs"} <= b.keys()
            for run in b["runs"]:
                assert {"median_ms", "p95_ms"} <= run["single"].keys()
                assert "per_query_ms" in run["batched"]
                assert {"single", "batched"} == run["speedup_vs_numpy"].keys()
                assert {"mated", "non_mated"} == run["recall_at_1"].keys()
            if b["exact"]:  # exact back-ends must agree with numpy, whatever the speed
                assert b["runs"][0]["recall_at_1"] == {"mated": 1.0, "non_mated": 1.0}

    mem = result["memory"]
    assert mem["peak_rss_mb"] > 0
    assert {"peak_rss_mb", "peak_rss_delta_mb", "wall_s", "cores_used"} <= mem["sections"]["search"].keys()

    md = (tmp_path / "bench.md").read_text()
    for heading in ("## Machine", "## 1:N search", "## Memory"):
        assert heading in md
    assert "| 2,000 | usearch-hnsw (ef 32) |" in md


def test_bad_sizes_are_refused_by_the_parser(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), "--sizes", "1k"])
    assert e.value.code == 2
    assert "not a comma-separated list of integers" in capsys.readouterr().err


def test_quick_watchlist_bench_section(tmp_path):
    """The watchlist bundle section of make bench: build, publish over TLS mosquitto, apply, ack."""
    import json

    from appliance.bench.__main__ import main

    assert main(["--out", str(tmp_path), "--quick", "--only", "watchlist"]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["watchlist"]["ack_status"] == "applied" and result["watchlist"]["subjects"] == 1000
    assert "Watchlist bundle end to end" in (tmp_path / "bench.md").read_text()
