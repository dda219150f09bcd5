"""The package has no import cycles; the checker itself finds a constructed cycle."""

from pathlib import Path

import appliance
from appliance.devtools.import_cycles import find_cycle


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
