"""Fail if the package has an import cycle (run by `make lint` and a unit test).

Builds the module graph from the source with `ast` and sorts it with the standard library's
`graphlib`, which reports a cycle when there is one. Imports inside functions count too: a cycle
is a design smell wherever the import sits.
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
    print(f"no import cycles in {package_dir.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
