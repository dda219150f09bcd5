"""Whether the running threshold is covered by the model's evaluation across groups (pure logic).

`appliance eval --groups --calibrate` writes an *equitable* calibration into the manifest: the threshold at
which every group's false-alert rate (FPIR) is at or below the target, with each group's figures under
`calibration.evidence.groups` (docs/accuracy.md). That guarantee holds at that threshold and at any stricter
one (a higher threshold only removes alerts). It does not hold for a model calibrated without groups, nor
below the calibrated threshold: the floor lets a force go lower, and there some group may exceed the target.
The daemon says so on the console's banner, the status topic and in the audit chain (`threshold.unequal`),
and the console's status carries the group figures the calibration recorded.
"""

from __future__ import annotations

from typing import Any

from appliance.runtime.manifest import ModelSpec

EQUITABLE = "equitable"  # how the evidence's `method` begins when every group met the target


def _groups(evidence: Any) -> dict[str, dict]:
    groups = evidence.get("groups") if isinstance(evidence, dict) else None
    return {name: g for name, g in groups.items() if isinstance(g, dict)} if isinstance(groups, dict) else {}


def group_warning(spec: ModelSpec, threshold: float) -> str | None:
    """One line when the threshold in use is not covered by an equitable group calibration; None when it is."""
    cal = spec.calibration
    if cal is None:
        return f"model {spec.id} has no calibration: its false-alert rate across groups was never measured"
    evidence = cal.evidence
    method = str(evidence.get("method", "")) if isinstance(evidence, dict) else ""
    if len(_groups(evidence)) < 2 or not method.startswith(EQUITABLE):
        return (f"the calibration of {spec.id} holds no per-group evidence: run `appliance eval --groups "
                "--calibrate` before deploying")
    if threshold < cal.threshold:
        return (f"threshold {threshold:.4f} is below the one calibrated across groups ({cal.threshold:.4f}): "
                f"some group's false-alert rate may exceed the target {cal.target_fpir:g}")
    return None


def group_figures(spec: ModelSpec) -> dict | None:
    """What the calibration recorded per group (counts and rates, never a face), or None without it."""
    cal = spec.calibration
    groups = _groups(cal.evidence) if cal is not None else {}
    if not groups:
        return None
    evidence = cal.evidence
    return {
        "method": evidence.get("method"),
        "dataset": evidence.get("dataset"),
        "target_fpir": cal.target_fpir,
        "threshold": cal.threshold,
        "binding_group": evidence.get("binding_group"),
        "groups": {name: {k: g.get(k) for k in ("identities", "non_mated_probes", "false_alarms_at_threshold",
                                                "fpir_ci95")}
                   for name, g in sorted(groups.items())},
    }
