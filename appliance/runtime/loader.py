"""One way to load any model of the manifest: its `runtime` field picks LiteRT (the default) or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.errors import ModelError
from appliance.runtime.interpreter import RuntimeOptions, TensorSpec, TFLiteModel, litert_version
from appliance.runtime.manifest import LITERT, ONNXRUNTIME, ModelSpec, verify_model
from appliance.runtime.onnx_model import OnnxModel, onnxruntime_version


class Model(Protocol):
    """What the vision code needs of a loaded model, whichever runtime runs it."""

    path: Path
    backend: str  # the runtime's distribution: ai-edge-litert, tflite-runtime or onnxruntime
    version: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]: ...


def load_model(spec: ModelSpec, root: Path | None = None, options: RuntimeOptions | None = None) -> Model:
    """Verify the model file's sha256, then load it with the runtime its manifest entry names."""
    path = verify_model(spec, root)
    model: Model = OnnxModel(path, options) if spec.runtime == ONNXRUNTIME else TFLiteModel(path, options)
    expected = tuple(int(x) for x in spec.input.get("shape", ()))
    if expected and model.inputs and model.inputs[0].shape != expected:
        raise ModelError(
            f"model {spec.id}: the manifest's input shape {list(expected)} is not the file's "
            f"{list(model.inputs[0].shape)} (check input.shape and input.layout in models/manifest.toml)"
        )
    return model


def runtime_version(runtime: str) -> str:
    """'ai-edge-litert 2.3.0', 'onnxruntime 1.23.2', or '<runtime> not installed'."""
    if runtime == LITERT:
        found = litert_version()
        return f"{found[0]} {found[1]}" if found else "litert not installed"
    version = onnxruntime_version()
    return f"onnxruntime {version}" if version else "onnxruntime not installed"
