"""Reload that tells the truth: which settings of a re-read config file the running daemon applies, and which
wait for a restart.

Each part that can change while running declares it: `RELOADABLE` (the fields of its config section it reads
afresh) and `update_config(section)`. `plan_reload` compares the running config with the file's, takes the
declared fields into the new running config and lists every other difference as needing a restart. The daemon
applies the plan on the frame thread, between frames (service.py `Appliance.reload`), audits both lists
(`config.changed`, `config.needs_restart`), and shows the second on the console until a restart or a
later reload brings them back in line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.config import Config


@dataclass(frozen=True)
class Difference:
    running: Any  # JSON-able: the value the daemon runs with
    file: Any  # the value in the config file


@dataclass(frozen=True)
class ReloadPlan:
    config: Config  # what runs after the reload: the old config with the applied fields taken from the file
    applied: dict[str, Difference] = field(default_factory=dict)  # "section.field" -> change
    needs_restart: dict[str, Difference] = field(default_factory=dict)

    def applied_sections(self) -> list[str]:
        return sorted({k.split(".", 1)[0] for k in self.applied})

    def restart_warning(self) -> str | None:
        """The console's and the status topic's line, or None when the daemon runs what the file says."""
        if not self.needs_restart:
            return None
        return "settings changed in the config file need a restart to apply: " + ", ".join(sorted(self.needs_restart))


def differences(old: Config, new: Config) -> dict[str, Difference]:
    """Every setting that differs, as "section.field"."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    out = {}
    for section, fields in b.items():
        for name, value in fields.items():
            if a[section][name] != value:
                out[f"{section}.{name}"] = Difference(a[section][name], value)
    return out


def plan_reload(old: Config, new: Config, reloadable: Mapping[str, frozenset[str]]) -> ReloadPlan:
    """`reloadable`: section -> the fields its running part declares (absent: nothing of it changes live)."""
    applied, restart = {}, {}
    for key, diff in differences(old, new).items():
        section, name = key.split(".", 1)
        (applied if name in reloadable.get(section, frozenset()) else restart)[key] = diff
    updates: dict[str, dict[str, Any]] = {}
    for key in applied:
        section, name = key.split(".", 1)
        updates.setdefault(section, {})[name] = getattr(getattr(new, section), name)
    running = old.model_copy(update={s: getattr(old, s).model_copy(update=u) for s, u in updates.items()})
    return ReloadPlan(running, applied, restart)
