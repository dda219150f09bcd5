"""docs/configuration.md is generated from the config models; it must match the code."""

from appliance.devtools.config_doc import render
from appliance.paths import PROJECT_ROOT


def test_configuration_reference_is_current():
    doc = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert doc == render(), "docs/configuration.md is stale: run `make docs`"
