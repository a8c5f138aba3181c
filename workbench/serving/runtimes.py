"""The runtimes the model server runs a model with, behind one interface: inputs and
outputs (:class:`TensorSpec`), and ``run(inputs) -> outputs``, a batch in and out (the
batch axis first). Each framework is imported only when its runtime is chosen.

- ``onnx``: ONNX Runtime's CPU provider (its inputs and outputs come from the file);
- ``torchscript``: ``torch.jit.load``;
- ``savedmodel``: a TensorFlow SavedModel's ``serving_default`` signature;
- ``sklearn``: a scikit-learn model (``*.skops``, only the types ``skops_trust`` allows;
  ``*.joblib``/``*.pkl``): ``label`` from ``predict``, ``probabilities`` from
  ``predict_proba`` when it has one;
- ``python``: your own class, ``Predictor`` in ``predictor.py`` beside the model (or in
  the file given as ``predictor``: an inference image keeps its code apart from the
  model): ``Predictor(model_dir)``, then ``predict(inputs: dict[str, np.ndarray]) ->
  dict[str, np.ndarray]``. It may say its own inputs and outputs in a ``signature``
  attribute (the shape of ``signature.json``), and raise :class:`BadInput` for a request
  it cannot take (400, not 500). A ``BYTES`` output may hold any JSON value per sample (a
  dict, a list), returned as a list: the simple route answers it as it is, the V2 route as
  its JSON text.

Where the file does not say (TorchScript, scikit-learn, your class), the inputs and outputs
are the version's ``signature.json`` (docs/contracts.md).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from workbench.serving.protocol import ProtocolError, TensorSpec, v2_datatype

#: the runtimes, and the model files each takes in a folder
RUNTIMES = {
    "onnx": ("*.onnx",),
    "torchscript": ("*.pt", "*.pth", "*.torchscript"),
    "savedmodel": ("saved_model.pb",),
    "sklearn": ("*.skops", "*.joblib", "*.pkl"),
    "python": ("predictor.py",),
}
#: what Triton calls each runtime (a model configuration's ``platform``)
PLATFORMS = {
    "onnx": "onnxruntime_onnx",
    "torchscript": "pytorch_libtorch",
    "savedmodel": "tensorflow_savedmodel",
    "sklearn": "sklearn",
    "python": "python",
}
SIGNATURE_FILE = "signature.json"


class ModelLoadError(Exception):
    """The model cannot be served as asked; the message says why."""


class BadInput(ProtocolError):
    """Raised by a Python predictor for a request it cannot take (an image that does not
    decode, an empty text): the request answers 400 with ``{"error": message}``, so say
    what to send instead. Any other exception answers 500."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400)


class Runtime:
    """A loaded model (see the module doc)."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def load(
    path: Path,
    runtime: str,
    *,
    threads: int = 1,
    signature: dict[str, Any] | None = None,
    predictor: Path | None = None,
) -> Runtime:
    """The model at ``path`` (a model file, or the folder holding one) with ``runtime``;
    ``signature``: its inputs and outputs, where the model does not say (default: its
    ``signature.json``); ``predictor``: the ``python`` runtime's file when it is not in
    the model's folder (``Predictor`` then gets ``path``, the folder)."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"no runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    if predictor is not None:
        if runtime != "python":
            raise ModelLoadError(f"a predictor file is for the python runtime, not {runtime}")
        if not predictor.is_file():
            raise ModelLoadError(f"{predictor} is not a file")
        return PythonRuntime(path if path.is_dir() else path.parent, predictor, signature)
    folder, file = _locate(path, runtime)
    if runtime == "python":  # its class may say what its inputs and outputs are
        return PythonRuntime(folder, file, signature)
    if runtime == "onnx":  # these two models say what their inputs and outputs are
        return OnnxRuntime(file, threads)
    if runtime == "savedmodel":
        return SavedModelRuntime(file.parent, threads)
    signature = signature or _signature(folder, file)
    if runtime == "torchscript":
        return TorchScriptRuntime(file, signature, threads)
    return SklearnRuntime(file, signature)


def _locate(path: Path, runtime: str) -> tuple[Path, Path]:
    if path.is_file():
        return path.parent, path
    if not path.is_dir():
        raise ModelLoadError(f"{path} is neither a model file nor a folder")
    found = sorted(
        (len(p.relative_to(path).parts), p.as_posix(), p)
        for pattern in RUNTIMES[runtime]
        for p in path.rglob(pattern)
    )
    if not found:
        raise ModelLoadError(f"{path} holds no {runtime} model ({', '.join(RUNTIMES[runtime])})")
    file = found[0][2]
    return path, file


def _signature(folder: Path, file: Path) -> dict[str, Any]:
    for candidate in (file.parent / SIGNATURE_FILE, folder / SIGNATURE_FILE):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise ModelLoadError(
        f"{file.name} does not say what its inputs are, and there is no {SIGNATURE_FILE} "
        "beside it (docs/contracts.md)"
    )


def _specs(entries: list[dict[str, Any]]) -> list[TensorSpec]:
    return [
        TensorSpec(
            e["name"], v2_datatype(_numpy_dtype(e["dtype"])), tuple(e["shape"]), e.get("default")
        )
        for e in entries
    ]


def _numpy_dtype(name: str) -> np.dtype[Any]:
    return np.dtype(object) if name == "string" else np.dtype(name)


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, file: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.inputs = [_ort_spec(arg) for arg in self.session.get_inputs()]
        self.outputs = [_ort_spec(arg) for arg in self.session.get_outputs()]
        self._names = [spec.name for spec in self.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fed = {k: (v.astype(str) if v.dtype == object else v) for k, v in inputs.items()}
        return dict(zip(self._names, self.session.run(self._names, fed), strict=True))


#: ONNX Runtime's type names -> V2 datatypes
_ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def _ort_spec(arg: Any) -> TensorSpec:
    if arg.type not in _ORT_TYPES:
        raise ModelLoadError(f"{arg.name} is a {arg.type}, which the server does not serve")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, _ORT_TYPES[arg.type], shape)


class TorchScriptRuntime(Runtime):
    name = "torchscript"

    def __init__(self, file: Path, signature: dict[str, Any], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.module = torch.jit.load(str(file), map_location="cpu").eval()
        self.inputs = _specs(signature["inputs"])
        self.outputs = _specs(signature.get("outputs") or []) or [
            TensorSpec("output", "FP32", (-1,))
        ]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.torch.no_grad():
            out = self.module(
                *[self.torch.from_numpy(np.array(inputs[s.name])) for s in self.inputs]
            )
        outs = out if isinstance(out, tuple | list) else [out]
        return {spec.name: o.numpy() for spec, o in zip(self.outputs, outs, strict=True)}


class SavedModelRuntime(Runtime):
    name = "savedmodel"

    def __init__(self, folder: Path, threads: int) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.tf = tf
        self.loaded = tf.saved_model.load(str(folder))
        if "serving_default" not in self.loaded.signatures:
            raise ModelLoadError("the SavedModel has no serving_default signature")
        self.function = self.loaded.signatures["serving_default"]
        self.inputs = [
            TensorSpec(n, v2_datatype(t.dtype.as_numpy_dtype), _dims(t.shape.as_list()))
            for n, t in self.function.structured_input_signature[1].items()
        ]
        self.outputs = [
            TensorSpec(n, v2_datatype(t.dtype.as_numpy_dtype), _dims(t.shape.as_list()))
            for n, t in self.function.structured_outputs.items()
        ]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.function(**{k: self.tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}


def _dims(shape: list[int | None]) -> tuple[int, ...]:
    return tuple(d if d is not None else -1 for d in shape)


class SklearnRuntime(Runtime):
    name = "sklearn"

    def __init__(self, file: Path, signature: dict[str, Any]) -> None:
        if file.suffix == ".skops":
            import skops.io

            from workbench.models.container.skops_trust import UntrustedTypes, trusted_types

            try:
                trusted = trusted_types(file)
            except UntrustedTypes as exc:
                raise ModelLoadError(str(exc)) from exc
            self.model = skops.io.load(file, trusted=trusted)
        else:
            import joblib

            self.model = joblib.load(file)
        self.inputs = _specs(signature["inputs"])
        declared = _specs(signature.get("outputs") or [])
        self.proba = hasattr(self.model, "predict_proba")
        names = [spec.name for spec in declared] or (
            ["label", "probabilities"] if self.proba else ["label"]
        )
        self.outputs = declared or [TensorSpec(n, "BYTES", (-1,)) for n in names]
        self._names = names

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs[self.inputs[0].name]
        if x.dtype == object:
            x = np.array([v.decode() if isinstance(v, bytes) else v for v in x.reshape(-1)])
        outs = [np.asarray(self.model.predict(x))]
        if self.proba and len(self._names) > 1:
            outs.append(np.asarray(self.model.predict_proba(x), dtype=np.float32))
        return dict(zip(self._names, outs, strict=False))


class PythonRuntime(Runtime):
    name = "python"

    def __init__(self, folder: Path, file: Path, signature: dict[str, Any] | None) -> None:
        """``signature``: given (``--signature``), else the predictor's own attribute, else
        a ``signature.json`` beside its file or in ``folder``."""
        spec = importlib.util.spec_from_file_location("workbench_predictor", file)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"{file} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cls = getattr(module, "Predictor", None)
        if cls is None:
            raise ModelLoadError(f"{file.name} defines no class Predictor")
        self.predictor = cls(str(folder))
        signature = (
            signature or getattr(self.predictor, "signature", None) or _signature(folder, file)
        )
        self.inputs = _specs(signature["inputs"])
        self.outputs = _specs(signature.get("outputs") or [])
        if not self.outputs:
            raise ModelLoadError(f"{SIGNATURE_FILE} must list the Predictor's outputs")
        self._texts = [s.name for s in self.outputs if s.datatype == "BYTES"]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.predictor.predict(inputs)
        for name in self._texts:  # a value per sample, whatever it is (a dict, a list)
            if isinstance(outputs.get(name), list):
                outputs[name] = _objects(outputs[name])
        return {k: np.asarray(v) for k, v in outputs.items()}


def _objects(values: list[Any]) -> np.ndarray:
    """``values`` as a 1-D array of objects (``np.asarray`` would make a list of lists a
    2-D array)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array
