"""Fail on dead code in the package (run by `make lint`).

vulture reads the package, the tests (code used only by a test still counts as used: a test of a part is a
reader of it) and `tests/dead_code_allowlist.py` (names used by libraries, each with its reason), and reports
what nothing uses. Only findings inside the package count.
"""

from __future__ import annotations

import sys

import vulture

from appliance.paths import PROJECT_ROOT

MIN_CONFIDENCE = 60
IGNORE_DECORATORS = ["@model_validator", "@field_validator", "@FORMATS.checks"]  # pydantic and jsonschema call them
IGNORE_NAMES = ["exc", "userdata", "model_config"]  # callback signatures and pydantic's class settings


def findings() -> list[str]:
    v = vulture.Vulture(ignore_names=IGNORE_NAMES, ignore_decorators=IGNORE_DECORATORS)
    v.scavenge([str(PROJECT_ROOT / "appliance"), str(PROJECT_ROOT / "tests")])
    package = PROJECT_ROOT / "appliance"
    return [item.get_report(add_size=False) for item in v.get_unused_code(min_confidence=MIN_CONFIDENCE)
            if package in item.filename.parents]


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
