"""The one TFLite interpreter wrapper. Every model runs through `TFLiteModel`.

LiteRT (`ai-edge-litert`) is preferred; `tflite-runtime` is the fallback (its int8 path is ~15x slower
on x86 because it does not use XNNPACK there, see models/README.md).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ModelError


def _load_backend() -> tuple[str, Any]:
    """(distribution name, interpreter module) of the TFLite interpreter installed."""
    try:
        from ai_edge_litert import interpreter as litert

        return "ai-edge-litert", litert
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tflite  # type: ignore[import-not-found]

        return "tflite-runtime", tflite
    except ImportError:
        raise ModelError(
            "no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)"
        ) from None


def litert_version() -> tuple[str, str] | None:
    """(distribution, version) of the TFLite interpreter installed, or None."""
    try:
        name, _ = _load_backend()
    except ModelError:
        return None
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return name, "unknown"


@dataclass(frozen=True)
class RuntimeOptions:
    threads: int = 2
    xnnpack: bool = True


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantised(self) -> bool:
        return self.scale != 0.0


class TFLiteModel:
    """A loaded TFLite model. Not thread-safe: give each thread its own instance."""

    def __init__(self, path: Path | str, options: RuntimeOptions | None = None):
        options = options or RuntimeOptions()
        self.path = Path(path)
        self.backend, module = _load_backend()
        self.version = (litert_version() or (self.backend, "unknown"))[1]
        kwargs: dict[str, Any] = {"model_path": str(self.path), "num_threads": options.threads}
        if not options.xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interp = module.Interpreter(**kwargs)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load model {self.path}: {str(e).splitlines()[0]}") from None
        self.inputs = [self._spec(d) for d in self._interp.get_input_details()]
        self.outputs = [self._spec(d) for d in self._interp.get_output_details()]
        self._in_idx = [d["index"] for d in self._interp.get_input_details()]
        self._out_idx = [d["index"] for d in self._interp.get_output_details()]

    @staticmethod
    def _spec(d: dict) -> TensorSpec:
        scale, zp = d.get("quantization", (0.0, 0))
        return TensorSpec(d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]), float(scale), int(zp))

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run one inference; inputs must already have the model's shape and dtype."""
        for idx, spec, x in zip(self._in_idx, self.inputs, inputs, strict=True):
            if x.dtype != spec.dtype:
                x = x.astype(spec.dtype)
            self._interp.set_tensor(idx, x)
        self._interp.invoke()
        return [self._interp.get_tensor(i).copy() for i in self._out_idx]
