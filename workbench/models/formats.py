"""Model formats: what a version's native files are, which deployment formats each can be
converted to (in order: a format made from another comes after it), and the signature a
model declares (``signature.json`` beside its files, docs/contracts.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
#: formats that only approximate the native model: their conversion check allows an error
#: up to a share of the output's range, not element by element (INT8 weights)
APPROXIMATE = frozenset({"onnx-int8"})
#: a benchmark point is stable once three windows' throughputs agree within 10 %
#: (models/container/benchmark.py): a p50 closer than this to another is within noise
NOISE = 0.10

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


@dataclass(frozen=True)
class DefaultFormat:
    """A version's default serving format, and why the rule chose it."""

    format: str
    reason: str


def choose_default(
    p50_ms: Mapping[str, float], checks: Mapping[str, Mapping[str, Any]]
) -> DefaultFormat | None:
    """The one rule for what a service of a version serves unless its publisher names a
    format: the fastest exact format at batch size 1 (``p50_ms``: format -> its batch-1
    median), ``native`` among them. An approximate format (:data:`APPROXIMATE`) wins only
    when it is faster beyond :data:`NOISE` and its conversion check (``checks``: format ->
    ``FormatInfo.check``) ran on held-out samples and lost no accuracy there. None when
    nothing was measured at batch size 1."""
    exact = {fmt: t for fmt, t in p50_ms.items() if fmt not in APPROXIMATE}
    fastest = min(exact, key=exact.__getitem__) if exact else None
    why_not: list[str] = []
    for fmt in sorted(set(p50_ms) & APPROXIMATE, key=p50_ms.__getitem__):
        check = checks.get(fmt, {})
        evaluation = check.get("evaluation") or {}
        if fastest is not None and p50_ms[fmt] >= exact[fastest] * (1 - NOISE):
            gain = 1 - p50_ms[fmt] / exact[fastest]
            why_not.append(
                f"{fmt} is approximate and only {gain:.0%} faster than {fastest}, within "
                f"the benchmark's {NOISE:.0%} noise"
            )
        elif check.get("inputs") != "held-out" or "change" not in evaluation:
            why_not.append(
                f"{fmt} is approximate and its accuracy was not checked on held-out samples "
                "(register the version with samples.npz, docs/contracts.md)"
            )
        elif evaluation["change"] < 0:
            why_not.append(
                f"{fmt} is approximate and lost accuracy on held-out samples "
                f"({evaluation['native']:.4f} -> {evaluation['format']:.4f})"
            )
        else:
            than = f" than {fastest}" if fastest else ""
            gain = 1 - p50_ms[fmt] / exact[fastest] if fastest else 0.0
            return DefaultFormat(
                fmt,
                f"{fmt}: {gain:.0%} faster{than} at batch size 1, beyond the benchmark's "
                f"{NOISE:.0%} noise, with no accuracy lost on {check.get('samples')} "
                f"held-out samples ({evaluation['native']:.4f} -> {evaluation['format']:.4f})",
            )
    if fastest is None:
        return None
    reason = f"{fastest}: the fastest exact format at batch size 1"
    return DefaultFormat(fastest, "; ".join([reason, *why_not]))


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
