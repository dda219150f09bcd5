"""Fail on dead code in the package (run by `make lint`).

vulture reads the package, the tests (code used only by a test still counts as used: a test of a part is a
reader of it) and `tests/dead_code_allowlist.py` (names used by libraries, each with its reason), and reports
what nothing uses. Only findings inside the package count.

The fields of a TypedDict are not reported: they are the keys of a plain dict (a row, an MQTT payload, the
console's JSON), read as `record["key"]` or by a schema or the page's JavaScript, which vulture cannot see.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vulture

from appliance.paths import PROJECT_ROOT

MIN_CONFIDENCE = 60
IGNORE_DECORATORS = ["@model_validator", "@field_validator", "@FORMATS.checks"]  # pydantic and jsonschema call them
IGNORE_NAMES = ["exc", "userdata", "model_config"]  # callback signatures and pydantic's class settings


def _typed_dicts(package: Path) -> dict[Path, list[tuple[int, int]]]:
    """file -> the line spans of its TypedDict classes (a class whose base is TypedDict or, by name, another
    TypedDict of the package)."""
    classes = [(path, node) for path in package.rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.ClassDef)]
    names = {"TypedDict"}
    while True:
        more = {c.name for _, c in classes if c.name not in names
                and any(getattr(b, "id", getattr(b, "attr", None)) in names for b in c.bases)}
        if not more:
            break
        names |= more
    spans: dict[Path, list[tuple[int, int]]] = {}
    for path, c in classes:
        if c.name in names and c.name != "TypedDict":
            spans.setdefault(path, []).append((c.lineno, c.end_lineno or c.lineno))
    return spans


def _is_typed_dict_field(item, spans: dict[Path, list[tuple[int, int]]]) -> bool:
    return item.typ == "variable" and any(a <= item.first_lineno <= b for a, b in spans.get(Path(item.filename), []))


def findings() -> list[str]:
    v = vulture.Vulture(ignore_names=IGNORE_NAMES, ignore_decorators=IGNORE_DECORATORS)
    v.scavenge([str(PROJECT_ROOT / "appliance"), str(PROJECT_ROOT / "tests")])
    package = PROJECT_ROOT / "appliance"
    spans = _typed_dicts(package)
    return [item.get_report(add_size=False) for item in v.get_unused_code(min_confidence=MIN_CONFIDENCE)
            if package in item.filename.parents and not _is_typed_dict_field(item, spans)]


def main() -> int:
    found = findings()
    for line in found:
        print(line.replace(str(PROJECT_ROOT) + "/", ""), file=sys.stderr)
    if found:
        print(f"dead code: {len(found)} finding(s): delete it, or list a name used by a library in "
              "tests/dead_code_allowlist.py with the reason", file=sys.stderr)
        return 1
    print("no dead code in appliance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
