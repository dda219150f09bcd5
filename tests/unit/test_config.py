"""The configuration file: validated, errors name the field and the reason, defaults serve a Pi 5."""

import pytest

from appliance.config import load_config
from appliance.errors import ConfigError


def test_defaults_load():
    cfg = load_config()
    assert cfg.models.embedder == "mobilefacenet-int8"
    assert cfg.models.detector == "blazeface-full"
    assert cfg.runtime.threads >= 1


def test_out_of_bounds_names_the_field(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text("[detector]\nscore_threshold = 2.0\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "detector.score_threshold" in str(e.value) and "less than or equal" in str(e.value)


def test_unknown_field_is_refused(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text("[runtime]\nthread = 4\n")
    with pytest.raises(ConfigError, match=r"runtime\.thread"):
        load_config(p)


def test_bad_toml_and_missing_file(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text("[runtime\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_every_field_has_a_description():
    from appliance.config import Config

    def walk(model):
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                yield from walk(annotation)
            else:
                yield f"{model.__name__}.{name}", field.description

    missing = [name for name, desc in walk(Config) if not desc]
    assert not missing, f"fields without a description: {missing}"
