"""`make lint` fails on dead code in the package, and the package has none."""

from appliance.devtools import dead_code


def test_the_package_has_no_dead_code():
    assert dead_code.findings() == []


def test_an_unused_function_is_found(tmp_path, monkeypatch):
    (tmp_path / "appliance").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "appliance" / "part.py").write_text("def used():\n    return 1\n\n\ndef forgotten():\n    return 2\n")
    (tmp_path / "tests" / "test_part.py").write_text("from appliance.part import used\n\n\ndef test():\n    used()\n")
    monkeypatch.setattr(dead_code, "PROJECT_ROOT", tmp_path)
    (line,) = dead_code.findings()
    assert "unused function 'forgotten'" in line


def test_typed_dict_fields_are_keys_not_dead_variables(tmp_path, monkeypatch):
    (tmp_path / "appliance").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "appliance" / "part.py").write_text(
        "from typing import TypedDict\n\n\nclass Row(TypedDict):\n    key_only_read_as_a_string: int\n\n\n"
        "class More(Row, total=False):\n    another_key: str\n\n\nclass Plain:\n    forgotten_attribute: int = 0\n\n\n"
        "def row() -> More:\n    return {'key_only_read_as_a_string': 1}\n\n\nPlain()\n")
    (tmp_path / "tests" / "test_part.py").write_text("from appliance.part import row\n\n\ndef test():\n    row()\n")
    monkeypatch.setattr(dead_code, "PROJECT_ROOT", tmp_path)
    (line,) = dead_code.findings()
    assert "unused variable 'forgotten_attribute'" in line
