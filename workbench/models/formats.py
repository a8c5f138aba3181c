"""Model formats: what a version's native files are, which deployment formats each can be
converted to (in order: a format made from another comes after it), and the signature a
model declares (``signature.json`` beside its files, docs/contracts.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from workbench.errors import InvalidInput

#: native kind -> the glob patterns that find its model file
NATIVE_FILES: dict[str, tuple[str, ...]] = {
    "torchscript": ("*.pt", "*.pth", "*.torchscript"),
    "sklearn": ("*.joblib", "*.skops"),
    "onnx": ("*.onnx",),
}
#: native kind -> the framework a version of it is (what filters and the runtime go by)
FRAMEWORK = {"torchscript": "pytorch", "sklearn": "sklearn", "onnx": "onnx"}
#: native kind -> the formats it converts to, in the order they are made
CONVERSIONS: dict[str, tuple[str, ...]] = {
    "torchscript": ("onnx", "onnx-optimized", "onnx-int8", "tensorrt"),
    "sklearn": ("onnx", "onnx-optimized", "onnx-int8"),
    "onnx": ("onnx-optimized", "onnx-int8", "tensorrt"),
}
#: every format a conversion makes, with what it is
FORMATS = {
    "onnx": "ONNX with a dynamic batch axis",
    "onnx-optimized": "ONNX with ONNX Runtime's graph optimisations applied and saved",
    "onnx-int8": "ONNX with its weights quantized to INT8 (dynamic quantization)",
    "tensorrt": "a TensorRT engine (needs an NVIDIA GPU)",
}
#: the file a model's signature is read from, in its folder
SIGNATURE_FILE = "signature.json"

Dtype = Literal["float32", "float64", "int64", "int32", "bool", "string"]


class TensorSpec(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    dtype: Dtype
    #: -1 for a dynamic axis (the batch axis first)
    shape: list[int]
    #: sample values for a string input (the conversion's check feeds them)
    examples: list[str] = Field(default_factory=list, max_length=100)


class Signature(BaseModel):
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(default_factory=list)


def native_kind(folder: Path) -> str | None:
    """What the version's model file is (``torchscript``, ``sklearn``, ``onnx``), by its
    name; None when no known model file is there."""
    for kind, patterns in NATIVE_FILES.items():
        if any(next(folder.rglob(p), None) is not None for p in patterns):
            return kind
    return None


def read_signature(folder: Path) -> Signature | None:
    """The signature a model's folder declares; None without one. :class:`InvalidInput`
    saying what is wrong when the file is not a signature."""
    path = folder / SIGNATURE_FILE
    if not path.is_file():
        return None
    try:
        return Signature.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(
            f"{SIGNATURE_FILE} is not a signature ({exc}); write "
            '{"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}], '
            '"outputs": [...]}',
            field="signature",
        ) from exc
