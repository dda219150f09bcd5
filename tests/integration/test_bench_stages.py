"""The quick benchmark's vision section runs on the real models and a real replay clip, at 720p and 1080p,
and reports every stage. Figures are not checked (no timed tests)."""

from __future__ import annotations

import json

import pytest

from appliance.bench.__main__ import main
from appliance.paths import shared_data_dir

pytestmark = pytest.mark.skipif(
    not (shared_data_dir() / "crowd").is_dir(),
    reason=f"test data not found at {shared_data_dir()}/crowd (set APPLIANCE_SHARED)",
)


def test_quick_stage_bench_reports_every_stage_at_720p_and_1080p(tmp_path):
    assert main(["--out", str(tmp_path), "--quick", "--only", "stages"]) == 0
    stages = json.loads((tmp_path / "bench.json").read_text())["stages"]
    assert "skipped" not in stages, stages.get("skipped")
    assert set(stages["resolutions"]) == {"720p", "1080p"}
    for label, r in stages["resolutions"].items():
        every = r["every_face"]
        assert every["frames"] >= 1 and every["fps"] > 0, label
        assert every["faces_per_frame"]["detected_mean"] > 0, f"no faces found in the {label} clip"
        for stage in ("detect", "landmarks", "align", "embed", "match"):
            assert every["stages"][stage]["calls"] > 0, (label, stage)
            assert every["stages"][stage]["median_ms"] is not None
        assert r["tracked"]["fps"] > 0
        rr = r["tracked_round_robin"]
        assert rr["schedule"] == "round_robin" and rr["fps"] > 0 and rr["tracks_started"] > 0
    md = (tmp_path / "bench.md").read_text()
    assert "## Vision stages" in md and "| 1080p | embed |" in md
    assert "| 1080p | round_robin |" in md
