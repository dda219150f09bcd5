"""The model manifest: install from a folder, verify sha256, one clear line for a missing or corrupt file."""

import hashlib

import pytest

from appliance.errors import ModelError
from appliance.paths import models_dir
from appliance.runtime.manifest import install_models, load_manifest, verify_model


@pytest.fixture
def tiny_manifest(tmp_path):
    """A manifest of one small 'model' file, with its source folder."""
    source = tmp_path / "source" / "detector"
    source.mkdir(parents=True)
    payload = b"not really a model" * 100
    (source / "m.tflite").write_bytes(payload)
    root = tmp_path / "models"
    root.mkdir()
    (root / "manifest.toml").write_text(f"""
[defaults]
detector = "m"
[models.m]
role = "detector"
file = "detector/m.tflite"
sha256 = "{hashlib.sha256(payload).hexdigest()}"
bytes = {len(payload)}
source = "test"
licence = "MIT"
input = {{ shape = [1, 8, 8, 3] }}
output = "x"
""")
    return load_manifest(root), tmp_path / "source"


def test_the_shipped_manifest_lists_every_role():
    m = load_manifest()
    assert m.default("detector").id == "blazeface-full"
    assert m.default("landmarks").id == "face-mesh"
    emb = m.default("embedder")
    assert emb.id == "mobilefacenet-int8"
    assert emb.calibration is not None and emb.calibration.floor <= emb.calibration.threshold
    for spec in m.models.values():
        assert len(spec.sha256) == 64 and spec.licence and spec.source


def test_install_copies_and_verifies(tiny_manifest):
    manifest, source = tiny_manifest
    lines = []
    installed = install_models(manifest, source=source, log=lines.append, allow_download=False)
    assert installed[0].is_file() and "installed" in lines[0]
    lines.clear()
    install_models(manifest, source=source, log=lines.append, allow_download=False)  # idempotent
    assert lines[0].startswith("ok")


def test_missing_model_says_which_file_and_how(tiny_manifest, tmp_path):
    manifest, _ = tiny_manifest
    with pytest.raises(ModelError) as e:
        verify_model(manifest.get("m"))
    msg = str(e.value)
    assert "detector/m.tflite" in msg and "missing" in msg and "make models" in msg and "\n" not in msg
    with pytest.raises(ModelError, match="not found in"):
        install_models(manifest, source=tmp_path / "empty", allow_download=False)


def test_corrupt_model_is_named_and_refused(tiny_manifest):
    manifest, source = tiny_manifest
    install_models(manifest, source=source, allow_download=False)
    path = manifest.get("m").path(manifest.path.parent)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    with pytest.raises(ModelError, match=r"corrupt: sha256"):
        verify_model(manifest.get("m"), manifest.path.parent)
    # A corrupt source is not installed.
    path.unlink()
    (source / "detector" / "m.tflite").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="corrupt"):
        install_models(manifest, source=source, allow_download=False)
    assert not path.exists()


def test_installed_models_match_the_manifest():
    m = load_manifest()
    for spec in m.models.values():
        if not spec.path().exists():
            pytest.fail(f"{spec.path()} missing: run `make models`")
        verify_model(spec)
    assert models_dir().is_dir()


def test_runtime_and_layout_default_to_litert_and_nhwc(tiny_manifest):
    manifest, _ = tiny_manifest
    spec = manifest.get("m")
    assert spec.runtime == "litert" and spec.layout == "NHWC"
    shipped = load_manifest()
    assert {s.runtime for s in shipped.models.values()} == {"litert", "onnxruntime"}
    assert all(s.layout == "NHWC" for s in shipped.models.values() if s.runtime == "litert")


@pytest.mark.parametrize(("field", "value", "message"), [
    ('runtime = "tensorrt"', "", "runtime 'tensorrt'; known: litert, onnxruntime"),
    ("", ', layout = "CHW"', "input.layout 'CHW'; known: NHWC, NCHW"),
])
def test_an_unknown_runtime_or_layout_is_refused(tiny_manifest, field, value, message):
    manifest, _ = tiny_manifest
    path = manifest.path
    text = path.read_text().replace('role = "detector"', f'role = "detector"\n{field}')
    text = text.replace("shape = [1, 8, 8, 3]", f"shape = [1, 8, 8, 3]{value}")
    path.write_text(text)
    with pytest.raises(ModelError, match=message):
        load_manifest(path.parent)
