"""Fail if the package has an import cycle, or a package imports one above it (run by `make lint` and a unit test).

Builds the module graph from the source with `ast` and sorts it with the standard library's
`graphlib`, which reports a cycle when there is one. Imports inside functions count too: a cycle
is a design smell wherever the import sits.

A cycle between modules of different packages is not the only way layers rot: `LAYERS` is the one
list of the package's sub-packages (and top-level modules) from the lowest to the highest, and a
package may import only those below it. A package-level cycle is then a layer violation by definition.
"""

from __future__ import annotations

import ast
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path


def module_graph(package_dir: Path) -> dict[str, set[str]]:
    root = package_dir.parent
    modules = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package_dir.rglob("*.py")
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):
                    graph[name].add(t)
    return graph


# Lowest first. A package may import only packages earlier in this list (docs/architecture.md, "Layers").
LAYERS: tuple[str, ...] = (
    # foundations: no knowledge of faces, vans or MQTT
    "errors", "paths", "timeutil", "config", "message_kinds", "keys", "storage", "runtime",
    # the hot path and its measurements
    "capture", "vision", "matching", "evaluation", "alerts", "decisions",
    # the van's state and its link to the control room
    "officers", "watchlist", "sync", "events",
    # accountability: each owns its tables in the events database
    "audit", "retention", "deployments", "commands", "reports",
    # the control room's side, the device's helpers, the officer's console
    "control", "device", "console",
    # assembly and entry points
    "daemon", "cli", "__main__", "devtools", "bench",
)


def _package_of(module: str, root: str) -> str | None:
    """`appliance.events.store` -> `events`; the root package itself -> None (it imports nothing)."""
    parts = module.split(".")
    return parts[1] if parts[0] == root and len(parts) > 1 else None


def layer_violations(package_dir: Path, layers: tuple[str, ...] = LAYERS) -> list[str]:
    """One line per import of a package at or above the importer's own layer, or of one not in `layers`."""
    rank = {name: i for i, name in enumerate(layers)}
    root = package_dir.name
    problems: set[str] = set()
    for module, targets in module_graph(package_dir).items():
        here = _package_of(module, root)
        if here is None:
            continue
        if here not in rank:
            problems.add(f"{here}: not in LAYERS (appliance/devtools/import_cycles.py): add it where it belongs")
            continue
        for target in targets:
            there = _package_of(target, root)
            if there is None or there == here:
                continue
            if there not in rank:
                problems.add(f"{there}: not in LAYERS (appliance/devtools/import_cycles.py): add it where it belongs")
            elif rank[there] > rank[here]:
                problems.add(f"{module} imports {target}: {here} is below {there}")
    return sorted(problems)


def find_cycle(package_dir: Path) -> list[str] | None:
    try:
        tuple(TopologicalSorter(module_graph(package_dir)).static_order())
    except CycleError as e:
        return list(e.args[1])
    return None


def main() -> int:
    package_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "appliance").resolve()
    cycle = find_cycle(package_dir)
    if cycle:
        print("import cycle: " + " -> ".join(cycle), file=sys.stderr)
        return 1
    violations = layer_violations(package_dir)
    for line in violations:
        print("layer violation: " + line, file=sys.stderr)
    if violations:
        return 1
    print(f"no import cycles in {package_dir.name}, and every package imports only those below it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
