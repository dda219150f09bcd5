"""The watchlist bench (make bench) runs end to end: build, publish over TLS, apply in a device process, ack."""

from appliance.bench import watchlist_bench


def test_watchlist_bench_small(tmp_path, lfw_dir):
    r = watchlist_bench.run(tmp_path, subjects=60, log=lambda *_: None)
    assert r["ack_status"] == "applied" and r["gallery_subjects"] == 60 and r["subjects"] == 60
    assert r["bundle_bytes"] > 60 * 1000 and r["chunks"] >= 1
    s = r["seconds"]
    assert all(s[k] is not None and s[k] >= 0 for k in ("build_sign_encrypt", "verify", "apply", "publish_to_ack"))
    assert r["device_memory_mb"]["peak"] >= r["device_memory_mb"]["rss_at_start"] > 0
    assert (tmp_path / "watchlist.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["watchlist.json"]  # the work folder is cleaned up
