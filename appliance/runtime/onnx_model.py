"""ONNX Runtime as a second model runtime, for a model a force installs through the manifest
(`runtime = "onnxruntime"`): typically a stronger, licensed embedder that has no TFLite conversion.

Same surface as `TFLiteModel` (`inputs`, `outputs`, `run`, `backend`, `version`), so the vision code does not
care which runtime runs a model. onnxruntime is the optional `onnx` extra: imported only when a manifest
entry asks for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ModelError
from appliance.runtime.interpreter import RuntimeOptions, TensorSpec

# ONNX element types as onnxruntime names them, to numpy.
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def load_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(
            "this model runs on ONNX Runtime, which is not installed: pip install 'lfr-appliance[onnx]' "
            "(or onnxruntime)"
        ) from None
    return onnxruntime


def onnxruntime_version() -> str | None:
    try:
        return load_onnxruntime().__version__
    except ModelError:
        return None


class OnnxModel:
    """A loaded ONNX model on the CPU execution provider. Not thread-safe: give each thread its own instance."""

    backend = "onnxruntime"

    def __init__(self, path: Path | str, options: RuntimeOptions | None = None):
        options = options or RuntimeOptions()
        ort = load_onnxruntime()
        self.path = Path(path)
        self.version = ort.__version__
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        # The detector, landmarks and capture share these cores: do not let idle ORT threads spin on them.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelError(f"cannot load model {self.path}: {str(e).splitlines()[0]}") from None
        self.inputs = [self._spec(d) for d in self._session.get_inputs()]
        self.outputs = [self._spec(d) for d in self._session.get_outputs()]
        self._in_names = [d.name for d in self._session.get_inputs()]
        self._out_names = [d.name for d in self._session.get_outputs()]

    @staticmethod
    def _spec(d: Any) -> TensorSpec:
        if d.type not in _DTYPES:
            raise ModelError(f"ONNX tensor {d.name} has type {d.type}, which the appliance does not feed")
        # A symbolic dimension (a dynamic batch, 'N') is run with one face at a time.
        shape = tuple(x if isinstance(x, int) and x > 0 else 1 for x in d.shape)
        # Quantised ONNX models (QDQ) keep float inputs and outputs: no scale to apply outside.
        return TensorSpec(d.name, shape, np.dtype(_DTYPES[d.type]), 0.0, 0)

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run one inference; inputs must already have the model's shape (and are cast to its dtype)."""
        feed = {
            name: x if x.dtype == spec.dtype else x.astype(spec.dtype)
            for name, spec, x in zip(self._in_names, self.inputs, inputs, strict=True)
        }
        return list(self._session.run(self._out_names, feed))
