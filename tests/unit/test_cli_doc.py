"""Every command and option is documented: each has a help text, and docs/cli.md is the parser's own help."""

from appliance.cli.main import build_parser
from appliance.devtools.cli_doc import commands, render, undocumented
from appliance.paths import PROJECT_ROOT


def test_every_command_and_option_has_a_help_text():
    assert undocumented() == [], "add help= to these (then `make docs`)"


def test_the_command_reference_is_current():
    doc = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    assert doc == render(), "docs/cli.md is stale: run `make docs`"


def test_every_command_has_a_section():
    doc = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    for name, _ in commands(build_parser()):
        assert f"\n## `{name}`\n" in doc, name


def test_the_readme_points_at_the_reference_and_names_every_top_level_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "docs/cli.md" in readme
    top = {name.split()[1] for name, _ in commands(build_parser()) if len(name.split()) == 2}
    missing = [c for c in sorted(top) if f"appliance {c}" not in readme]
    assert missing == [], f"the README never mentions: {missing}"
