"""What a deployment records about matching, taken from the running parts (or the config, for the CLI)."""

from __future__ import annotations

from appliance.deployments.record import MatchingContext


def expected_false_alert_rate(embedder_spec, threshold: float, watchlist_size: int) -> float | None:
    """Expected share of faces seen (not on the list) that raise a false alert, for this watchlist size.

    From the model's calibration in the manifest: at the calibrated threshold the evaluation measured a
    false-positive identification rate `target_fpir` against a gallery of `gallery_size` people. Scaled to
    N subjects as independent chances per subject: 1 - (1 - fpir)^(N / G). At any other threshold the
    evaluation says nothing exact, so this returns None rather than a guess.
    """
    cal = getattr(embedder_spec, "calibration", None)
    if cal is None or watchlist_size <= 0 or abs(float(threshold) - cal.threshold) > 1e-6:
        return None
    evidence = (embedder_spec.raw.get("calibration") or {}).get("evidence") or {}
    gallery = evidence.get("gallery_size") if isinstance(evidence, dict) else None
    if not gallery:
        return None
    return float(f"{1.0 - (1.0 - cal.target_fpir) ** (watchlist_size / float(gallery)):.4g}")


def expected_false_alert_upper(embedder_spec, threshold: float, watchlist_size: int) -> float | None:
    """The one-sided honest end of that figure: the exact binomial (Clopper-Pearson) 95 % upper bound of the FPIR
    measured at the calibrated threshold (the false alarms of every group over the non-mated probes), scaled to
    this watchlist as above. Never 0 when no false alarm was seen. None where the rate itself is None."""
    if expected_false_alert_rate(embedder_spec, threshold, watchlist_size) is None:
        return None
    from appliance.evaluation.bootstrap import exact_interval

    evidence = embedder_spec.raw["calibration"]["evidence"]
    groups = evidence.get("groups") or {}
    probes = evidence.get("non_mated_probes")
    if not groups or not probes:
        return None
    alarms = sum(int(g.get("false_alarms_at_threshold", 0)) for g in groups.values())
    upper = exact_interval(alarms, int(probes))[1]
    return float(f"{1.0 - (1.0 - upper) ** (watchlist_size / float(evidence['gallery_size'])):.4g}")


def context_from_parts(watchlist_store, gallery_subjects: int, threshold: float, embedder_spec) -> MatchingContext:
    """From the daemon's parts: WatchlistStore (meta), the matcher's gallery size, threshold, embedder spec."""
    meta = watchlist_store.meta() or {}
    return MatchingContext(
        watchlist_id=meta.get("watchlist_id"),
        watchlist_version=int(meta["version"]) if meta.get("version") is not None else None,
        watchlist_sha256=meta.get("watchlist_sha256"),
        watchlist_subjects=int(gallery_subjects),
        threshold=float(threshold),
        model_id=embedder_spec.id,
        model_sha256=embedder_spec.sha256,
        expected_false_alert_rate=expected_false_alert_rate(embedder_spec, threshold, int(gallery_subjects)),
    )


def context_from_config(config, watchlist_store) -> MatchingContext:
    """For `appliance deployment start` (no daemon in this process): the manifest, the config, the store."""
    from appliance.matching.threshold import resolve_threshold
    from appliance.runtime.manifest import load_manifest

    spec = load_manifest(config.models.dir).get(config.models.embedder, "embedder")
    threshold = resolve_threshold(config.matcher, spec)
    subjects = watchlist_store.load_gallery().n_subjects if watchlist_store.meta() else 0
    return context_from_parts(watchlist_store, subjects, threshold, spec)
