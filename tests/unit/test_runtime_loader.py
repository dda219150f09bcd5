"""ONNX Runtime is optional: without it, the LiteRT models still load and an ONNX model fails with the fix."""

from __future__ import annotations

import sys

import pytest

from appliance.errors import ModelError
from appliance.runtime.loader import runtime_version
from appliance.runtime.onnx_model import OnnxModel


def test_without_onnxruntime_an_onnx_model_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert runtime_version("onnxruntime") == "onnxruntime not installed"
    with pytest.raises(ModelError, match=r"pip install 'lfr-appliance\[onnx\]'"):
        OnnxModel(tmp_path / "model.onnx")


def test_a_file_onnxruntime_cannot_read_is_a_model_error(tmp_path):
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="cannot load model"):
        OnnxModel(bad)
