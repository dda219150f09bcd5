"""No import cycle and every package in its layer; the checker finds a planted cycle and a planted violation."""

from pathlib import Path

import appliance
from appliance.devtools.import_cycles import find_cycle, layer_violations


def test_package_has_no_import_cycles():
    assert find_cycle(Path(appliance.__file__).parent) is None


def test_checker_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from pkg.a import thing\n")
    cycle = find_cycle(pkg)
    assert cycle is not None and {"pkg.a", "pkg.b"} <= set(cycle)


def test_every_package_imports_only_those_below_it():
    assert layer_violations(Path(appliance.__file__).parent) == []


def test_checker_finds_a_package_that_imports_one_above_it(tmp_path):
    # `low` reaches up into `high`: no module cycle, but a layer violation (and with high -> low, a package cycle).
    pkg = tmp_path / "pkg"
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from pkg.high.b import thing\n")
    (pkg / "high" / "b.py").write_text("thing = 1\n")
    (pkg / "high" / "c.py").write_text("from pkg.low.a import other\n")
    assert find_cycle(pkg) is None  # the module-level check alone cannot see it
    assert layer_violations(pkg, ("low", "high")) == ["pkg.low.a imports pkg.high.b: low is below high"]
    assert layer_violations(pkg, ("high", "low")) == ["pkg.high.c imports pkg.low.a: high is below low"]
    assert layer_violations(pkg, ("low",)) == [
        "high: not in LAYERS (appliance/devtools/import_cycles.py): add it where it belongs"]
