"""Checks a model trained elsewhere before it is registered, inside a container of an
environment image with the job's limits (the ``model-import`` job kind in
``workbench/models/jobs.py`` mounts the uploaded files read-only, this folder and an output
folder, and runs ``python validate.py REQUEST``). Loading a model runs its framework's
code, and a pickle or a module's code runs anything: that is why it happens here, never in
the Workbench server.

The request (JSON): ``kind`` (``onnx``, ``torchscript``, ``pytorch``, ``keras``,
``savedmodel``, ``skops``, ``pickle``), ``in_dir`` (the uploaded files), ``file`` (the
model file in it, relative; a folder kind may leave it empty), ``entry`` (``pytorch``:
``module:Class`` of the module code in ``in_dir``), ``signature`` (what the user declared;
may be empty where the file records it) and ``out_dir``.

The answer, ``result.json`` in ``out_dir``: ``ok``; ``message`` (what was wrong and what to
do, or what was found); ``signature`` (inputs and outputs, with -1 for the batch axis);
``native_file`` (the model file the version is run from, relative to the version's folder);
``warnings``. A state dict is scripted (or traced) to ``out_dir/files/model.pt``, which
becomes the version's model, its own files kept under ``source/``.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from convert import (
    DTYPES,
    Refused,
    held_out,
    load_sklearn,
    runner_for,
    sample_inputs,
    serving_function,
    tensorflow_threads,
)

#: ONNX Runtime's type names -> the signature's
ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}
#: the import kind -> the native kind its model runs as
NATIVE = {
    "onnx": "onnx",
    "torchscript": "torchscript",
    "pytorch": "torchscript",
    "keras": "keras",
    "savedmodel": "savedmodel",
    "skops": "sklearn",
    "pickle": "sklearn",
}
#: batch size of the trial run
TRIAL_BATCH = 2


class Invalid(Exception):
    """The upload is not what it claims, or cannot be used: the message says why."""


def why(exc: BaseException) -> str:
    """An exception in one line: its type and its message's first line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def dims(shape: Any) -> list[int]:
    """A shape with -1 for every unknown (symbolic or None) dimension."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def dtype_name(dtype: Any) -> str:
    name = np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).name
    if name in ("object", "bytes_", "str_") or name.startswith(("str", "bytes")):
        return "string"
    if name not in DTYPES:
        raise Invalid(f"a tensor of {name}, which Workbench does not handle yet")
    return name


# --- each kind: check the file, find its signature ----------------------------------------


def onnx_signature(path: Path) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise Invalid(f"{path.name} is not a valid ONNX model ({why(exc)})") from exc
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def spec(arg: Any) -> dict[str, Any]:
        if arg.type not in ORT_TYPES:
            raise Invalid(f"{arg.name} is a {arg.type}, which Workbench does not handle yet")
        return {"name": arg.name, "dtype": ORT_TYPES[arg.type], "shape": dims(arg.shape)}

    return {
        "inputs": [spec(i) for i in session.get_inputs()],
        "outputs": [spec(o) for o in session.get_outputs()],
    }


def torchscript_check(path: Path) -> None:
    import torch

    try:
        torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise Invalid(
            f"{path.name} is not a TorchScript file ({why(exc)}). A file saved with "
            "torch.save(model.state_dict()) is a state dict: import it as kind pytorch with "
            "its module's code, or save the model with torch.jit.save(torch.jit.script(model))"
        ) from exc


def script_state_dict(
    folder: Path, weights: Path, entry: str, signature: dict[str, Any], out: Path
) -> tuple[str, list[str]]:
    """Build ``entry``'s module, load the state dict into it, and save it as TorchScript
    (scripted, else traced on a sample batch) at ``out``; the warnings."""
    import torch

    module_name, _, class_name = entry.partition(":")
    module_name = module_name.removesuffix(".py").replace("/", ".")
    if not module_name or not class_name:
        raise Invalid(
            f"entry {entry!r} does not name the module class: give module:Class, e.g. "
            "model:Net for class Net in model.py"
        )
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise Invalid(
            f"the module {module_name} of entry {entry!r} could not be imported: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise Invalid(f"{entry!r}: {module_name} has no torch.nn.Module class {class_name}")
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Invalid(
            f"{weights.name} is not a state dict torch.load reads safely ({why(exc)}); save "
            "model.state_dict() with torch.save"
        ) from exc
    if not isinstance(state, dict):
        raise Invalid(f"{weights.name} holds a {type(state).__name__}, not a state dict")
    try:
        model = cls()
    except TypeError as exc:
        raise Invalid(f"{class_name}() could not be built without arguments: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise Invalid(f"{weights.name} does not fit {class_name}: {exc}") from exc
    model.eval()
    inputs = sample_inputs(signature, TRIAL_BATCH, 0)
    names = [spec["name"] for spec in signature["inputs"]]
    example = tuple(torch.from_numpy(inputs[n]) for n in names)
    warnings = []
    try:
        scripted = torch.jit.script(model)
    except Exception as exc:
        warnings.append(
            f"{class_name} could not be scripted ({type(exc).__name__}), so it was traced on a "
            "sample batch: control flow that depends on the input is frozen as traced"
        )
        with torch.no_grad():
            scripted = torch.jit.trace(model, example)
    with torch.no_grad():
        eager, script = model(*example), scripted(*example)
    for a, b in zip(_tensors(eager), _tensors(script), strict=True):
        if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
            raise Invalid(f"the TorchScript of {class_name} does not give the module's outputs")
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out))
    return out.name, warnings


def _tensors(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def keras_signature(path: Path) -> dict[str, Any]:
    tensorflow_threads()
    import keras

    try:
        model = keras.models.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:
        raise Invalid(
            f"{path.name} is not a Keras model file Workbench loads safely ({why(exc)}); save "
            "it with model.save('model.keras') (layers that run Python code, such as Lambda, "
            "are refused)"
        ) from exc
    names = getattr(model, "output_names", None) or []
    return {
        "inputs": [
            {"name": t.name, "dtype": dtype_name(t.dtype), "shape": dims(t.shape)}
            for t in model.inputs
        ],
        "outputs": [
            {
                "name": names[i] if i < len(names) else f"output_{i}",
                "dtype": dtype_name(t.dtype),
                "shape": dims(t.shape),
            }
            for i, t in enumerate(model.outputs)
        ],
    }


def savedmodel_signature(folder: Path) -> dict[str, Any]:
    tensorflow_threads()

    try:
        _, function = serving_function(folder)
    except Refused as exc:
        raise Invalid(str(exc)) from exc
    except Exception as exc:
        raise Invalid(f"the archive's SavedModel could not be loaded ({why(exc)})") from exc

    def spec(name: str, t: Any) -> dict[str, Any]:
        return {"name": name, "dtype": dtype_name(t.dtype), "shape": dims(t.shape.as_list())}

    return {
        "inputs": [spec(n, t) for n, t in function.structured_input_signature[1].items()],
        "outputs": [spec(n, t) for n, t in function.structured_outputs.items()],
    }


def sklearn_signature(path: Path, kind: str) -> tuple[dict[str, Any], list[str]]:
    warnings = []
    if kind == "skops" and path.suffix != ".skops":
        raise Invalid(f"{path.name}: a skops file's name ends in .skops")
    if kind == "skops":
        import zipfile

        if not zipfile.is_zipfile(path):
            raise Invalid(f"{path.name} is not a skops file (skops files are zip archives)")
    else:
        warnings.append(
            f"{path.name} is a pickle: loading it runs any code it holds, here and wherever "
            "it is served. Import only pickles you trust; prefer skops (skops.io.dump)"
        )
    try:
        model = load_sklearn(path)
    except Refused as exc:
        raise Invalid(str(exc)) from exc
    except Exception as exc:
        raise Invalid(
            f"{path.name} could not be loaded as a scikit-learn model ({why(exc)})"
        ) from exc
    if not hasattr(model, "predict"):
        raise Invalid(f"{path.name} holds a {type(model).__name__}, not a scikit-learn model")
    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    if type(steps[0]).__name__ in ("TfidfVectorizer", "CountVectorizer", "HashingVectorizer"):
        inputs = [{"name": "text", "dtype": "string", "shape": [-1]}]
    elif getattr(model, "n_features_in_", None):
        inputs = [{"name": "input", "dtype": "float32", "shape": [-1, int(model.n_features_in_)]}]
    else:
        raise Invalid(f"the inputs of {type(model).__name__} are unknown: give a signature")
    return {"inputs": inputs, "outputs": []}, warnings


# --- the job ------------------------------------------------------------------------------


def model_file(folder: Path, declared: str, suffixes: tuple[str, ...], what: str) -> Path:
    """The declared file, else the one file with one of ``suffixes`` in the upload."""
    if declared:
        path = folder / declared
        if not path.is_file():
            raise Invalid(f"{declared} is not among the uploaded files")
        return path
    found = sorted(p for s in suffixes for p in folder.rglob(f"*{s}"))
    if len(found) != 1:
        names = ", ".join(p.relative_to(folder).as_posix() for p in found[:5]) or "none"
        raise Invalid(f"the upload should hold one {what} ({'/'.join(suffixes)}); found {names}")
    return found[0]


def outputs_of(
    native: str, path: Path, signature: dict[str, Any]
) -> tuple[list[np.ndarray], list[str]]:
    """Run the model once on a sample batch: its outputs, and warnings about its signature."""
    warnings = []
    for spec in signature["inputs"]:
        if not spec["shape"] or spec["shape"][0] != -1:
            warnings.append(
                f"input {spec['name']} has no dynamic batch axis (shape {spec['shape']}): "
                "batch sizes other than its first dimension will fail; export it with a "
                "dynamic batch axis"
            )
    batch = TRIAL_BATCH if not warnings else max(1, signature["inputs"][0]["shape"][0])
    try:
        outputs = runner_for(native, path, signature)(sample_inputs(signature, batch, 0))
    except Exception as exc:
        raise Invalid(
            f"the model failed on a sample batch of its signature's inputs "
            f"({type(exc).__name__}: {str(exc)[:500]}); check the signature"
        ) from exc
    return outputs, warnings


def with_outputs(signature: dict[str, Any], outputs: list[np.ndarray]) -> dict[str, Any]:
    """The signature, its outputs described from a run when it does not list them."""
    declared = signature.get("outputs") or []
    if declared:
        if len(declared) != len(outputs):
            raise Invalid(
                f"the signature lists {len(declared)} outputs, the model gives {len(outputs)}"
            )
        return signature
    names = [f"output_{i}" for i in range(len(outputs))]
    return {
        **signature,
        "outputs": [
            {"name": n, "dtype": dtype_name(o.dtype), "shape": [-1, *o.shape[1:]]}
            for n, o in zip(names, outputs, strict=True)
        ],
    }


def validate(request: dict[str, Any], out: Path) -> dict[str, Any]:
    kind, folder = request["kind"], Path(request["in_dir"])
    declared: dict[str, Any] = request.get("signature") or {}
    if kind not in NATIVE:
        raise Invalid(f"{kind} is not a kind of model Workbench imports")
    native, warnings = NATIVE[kind], []
    if kind == "onnx":
        path = model_file(folder, request["file"], (".onnx",), "ONNX file")
        found = onnx_signature(path)
        signature = declared or found
    elif kind == "torchscript":
        path = model_file(folder, request["file"], (".pt", ".pth", ".torchscript"), "model file")
        torchscript_check(path)
        signature = declared
    elif kind == "pytorch":
        if not declared:
            raise Invalid("a state dict does not record its inputs' shapes: give a signature")
        weights = model_file(folder, request["file"], (".pt", ".pth", ".bin"), "state dict")
        made, warnings = script_state_dict(
            folder, weights, request.get("entry") or "", declared, out / "files" / "model.pt"
        )
        path, signature = out / "files" / made, declared
    elif kind == "keras":
        path = model_file(folder, request["file"], (".keras",), "Keras file")
        signature = declared or keras_signature(path)
    elif kind == "savedmodel":
        pbs = sorted(folder.rglob("saved_model.pb"))
        if len(pbs) != 1:
            raise Invalid(
                f"the archive should hold one SavedModel folder (with saved_model.pb); it "
                f"holds {len(pbs)}"
            )
        path = pbs[0]
        signature = declared or savedmodel_signature(path.parent)
    else:
        suffixes = (".skops",) if kind == "skops" else (".joblib", ".pkl")
        path = model_file(folder, request["file"], suffixes, "scikit-learn file")
        found, warnings = sklearn_signature(path, kind)
        signature = declared or found
    if not signature or not signature.get("inputs"):
        raise Invalid(
            f"a {kind} file does not record its inputs' shapes: give a signature "
            '({"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}]})'
        )
    outputs, batch_warnings = outputs_of(native, path, signature)
    signature = with_outputs(signature, outputs)
    samples = folder / "samples.npz"
    if samples.is_file():
        try:
            held_out(samples, signature, 1)
        except Exception as exc:
            raise Invalid(f"samples.npz does not fit the signature: {exc}") from exc
    # a state dict's TorchScript is the version's model; the upload goes under source/
    native_path = "model.pt" if kind == "pytorch" else path.relative_to(folder).as_posix()
    shapes = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in signature["inputs"])
    return {
        "ok": True,
        "message": f"a {kind} model taking {shapes}",
        "native": native,
        "native_file": native_path,
        "signature": signature,
        "warnings": warnings + batch_warnings,
    }


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    out = Path(request["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = validate(request, out)
    except Invalid as exc:
        result = {"ok": False, "message": str(exc)}
    except Exception as exc:  # the framework raised on something the checks did not catch
        traceback.print_exc()
        result = {"ok": False, "message": f"the check failed: {type(exc).__name__}: {exc}"[:2000]}
    print(f"[import] {'valid' if result['ok'] else 'invalid'}: {result['message']}", flush=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
