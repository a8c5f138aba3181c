"""Model formats: what a version's native files are, which deployment formats each can be
converted to (in order: a format made from another comes after it), and the signature a
model declares (``signature.json`` beside its files, docs/contracts.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from workbench.errors import InvalidInput

#: native kind -> the glob patterns that find its model file (the shallowest match wins:
#: an imported state dict's own files lie under ``source/``)
NATIVE_FILES: dict[str, tuple[str, ...]] = {
    "torchscript": ("*.pt", "*.pth", "*.torchscript"),
    "sklearn": ("*.joblib", "*.skops", "*.pkl"),
    "onnx": ("*.onnx",),
    "keras": ("*.keras",),
    "savedmodel": ("saved_model.pb",),
}
#: native kind -> the framework a version of it is (what filters and the runtime go by)
FRAMEWORK = {
    "torchscript": "pytorch",
    "sklearn": "sklearn",
    "onnx": "onnx",
    "keras": "tensorflow",
    "savedmodel": "tensorflow",
}
#: native kind -> the formats it converts to, in the order they are made
CONVERSIONS: dict[str, tuple[str, ...]] = {
    "torchscript": ("onnx", "onnx-optimized", "onnx-int8", "tensorrt"),
    "sklearn": ("onnx", "onnx-optimized", "onnx-int8"),
    "onnx": ("onnx-optimized", "onnx-int8", "tensorrt"),
    "keras": ("savedmodel", "onnx", "onnx-optimized", "onnx-int8"),
    "savedmodel": ("onnx", "onnx-optimized", "onnx-int8"),
}
#: every format a conversion makes, with what it is
FORMATS = {
    "savedmodel": "a TensorFlow SavedModel (its serving_default signature)",
    "onnx": "ONNX with a dynamic batch axis",
    "onnx-optimized": "ONNX with ONNX Runtime's graph optimisations applied and saved",
    "onnx-int8": "ONNX with its weights quantized to INT8 (dynamic quantization)",
    "tensorrt": "a TensorRT engine (needs an NVIDIA GPU)",
}
#: format -> the runtime that runs it (the native kinds run as themselves)
RUNTIME = {
    "savedmodel": "savedmodel",
    "onnx": "onnx",
    "onnx-optimized": "onnx",
    "onnx-int8": "onnx",
    "tensorrt": "tensorrt",
}
#: what a model trained elsewhere may be imported as -> (what it is, the native kind it
#: becomes, the environments' frameworks that can check it, best first)
IMPORT_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "onnx": ("an ONNX file (*.onnx)", "onnx", ("onnx", "python", "pytorch")),
    "torchscript": ("a TorchScript file (*.pt, torch.jit.save)", "torchscript", ("pytorch",)),
    "pytorch": (
        "a state dict (torch.save(model.state_dict())) with its module's code, as an archive; "
        "it is scripted (or traced) to TorchScript",
        "torchscript",
        ("pytorch",),
    ),
    "keras": ("a Keras model file (*.keras)", "keras", ("tensorflow",)),
    "savedmodel": (
        "a TensorFlow SavedModel folder, as an archive",
        "savedmodel",
        ("tensorflow",),
    ),
    "skops": ("a scikit-learn model saved with skops (*.skops)", "sklearn", ("python", "onnx")),
    "pickle": (
        "a scikit-learn model pickled with joblib or pickle (*.joblib, *.pkl); loading a "
        "pickle runs the code it holds",
        "sklearn",
        ("python", "onnx"),
    ),
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


def native_file(folder: Path) -> tuple[str, Path] | None:
    """The version's native kind (a key of :data:`NATIVE_FILES`) and its model file, by
    name: the shallowest match, in the order of :data:`NATIVE_FILES`; None when no known
    model file is there."""
    found = [
        (len(path.relative_to(folder).parts), order, path.as_posix(), kind, path)
        for order, (kind, patterns) in enumerate(NATIVE_FILES.items())
        for pattern in patterns
        for path in folder.rglob(pattern)
    ]
    if not found:
        return None
    *_, kind, path = min(found)
    return kind, path


def native_kind(folder: Path) -> str | None:
    """The kind of :func:`native_file`."""
    found = native_file(folder)
    return found[0] if found else None


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


def parse_signature(raw: dict[str, Any]) -> Signature:
    """``raw`` as a :class:`Signature`; :class:`InvalidInput` saying what is wrong."""
    try:
        return Signature.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            f"Not a signature: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}; give "
            '{"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}]}.',
            field="signature",
        ) from exc
