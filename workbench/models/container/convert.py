"""Converts one model version to deployment formats and checks each against the native
model, inside a container of the version's environment image (the job kind in
``workbench/models/jobs.py`` mounts this file, the native files read-only and an output
folder, and runs ``python convert.py REQUEST``).

It imports nothing from Workbench: only the standard library, NumPy and the frameworks the
image has (torch, onnx, onnxruntime, scikit-learn, skl2onnx, skops, tensorflow, tf2onnx),
each when a format needs it.

The request (JSON) names the native model file and its kind (``torchscript``, ``sklearn``,
``onnx``, ``keras``, ``savedmodel``), the formats wanted in order, the
signature (inputs with shapes, -1 for a dynamic axis), the tolerance and the number of
sample inputs. The inputs are the version's held-out samples when it has them
(``samples.npz`` beside the model: one array per input, by name, and ``labels``; see
docs/contracts.md), else seeded random ones in the signature's shapes. With labels, the
evaluation (accuracy) is run again on each format next to the native model's, and an
approximate format (INT8) must not lose more than the request's ``accuracy_drop``.

The answer, ``result.json`` in the output folder, has one entry per format:
``state`` (``verified`` or ``failed``), ``file`` (in ``<out>/<format>/``), ``message`` and
``check`` (``max_abs_error``, ``max_rel_error``, ``atol``, ``rtol``, ``samples``,
``inputs`` (``held-out`` or ``random``), ``top1_agreement``, ``evaluation``, ``seconds``).
A format that cannot be made or checked is ``failed`` with why; the others go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]

#: numpy dtypes of the signature's dtype names
DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
    "string": np.object_,
}


class Refused(Exception):
    """This format cannot be made from this model here; the message says why."""


def sample_inputs(signature: dict[str, Any], batch: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs in the signature's shapes (the dynamic batch axis is ``batch``)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in signature.get("inputs", []):
        shape = [
            batch if (d is None or d < 0) and i == 0 else (d if d and d > 0 else 1)
            for i, d in enumerate(spec["shape"])
        ]
        dtype = spec["dtype"]
        if dtype == "string":
            words = spec.get("examples") or ["sample text"]
            flat = [
                str(words[int(k) % len(words)]) for k in rng.integers(0, 1 << 30, np.prod(shape))
            ]
            inputs[spec["name"]] = np.array(flat, dtype=object).reshape(shape)
        elif dtype.startswith("float"):
            inputs[spec["name"]] = rng.standard_normal(shape).astype(DTYPES[dtype])
        else:
            inputs[spec["name"]] = rng.integers(0, 10, shape).astype(DTYPES[dtype])
    return inputs


def held_out(path: Path, signature: dict[str, Any], limit: int) -> tuple[dict, np.ndarray | None]:
    """The first ``limit`` held-out samples of ``samples.npz`` (one array per input of the
    signature, by name; text as a unicode array) and their ``labels`` (None without)."""
    with np.load(path, allow_pickle=False) as data:
        inputs = {}
        for spec in signature["inputs"]:
            if spec["name"] not in data.files:
                raise ValueError(
                    f"{path.name} has no array named {spec['name']!r} (it has "
                    f"{', '.join(data.files)}): name its arrays after the signature's inputs"
                )
            array = data[spec["name"]][:limit]
            inputs[spec["name"]] = array.astype(DTYPES[spec["dtype"]])
        labels = data["labels"][:limit] if "labels" in data.files else None
    return inputs, labels


def accuracy(outputs: list[np.ndarray], labels: np.ndarray) -> float:
    """The share of samples whose prediction is their label: the first output is either the
    predicted labels (1-D) or one score per class (2-D, the highest wins)."""
    first = np.asarray(outputs[0])
    predicted = first.argmax(1) if first.ndim == 2 and first.shape[1] > 1 else first.reshape(-1)
    return float(np.mean(predicted.astype(str) == np.asarray(labels).astype(str)))


def compare(
    expected: list[np.ndarray],
    got: list[np.ndarray],
    atol: float,
    rtol: float,
    range_tol: float | None = None,
) -> dict[str, Any]:
    """Max absolute and relative error over the outputs; top-1 agreement of the first 2-D
    output (a classifier's scores). ``ok`` when every element is within
    ``atol + rtol * |expected|``, or, with ``range_tol`` (an approximate format such as
    INT8), when the largest error is at most ``range_tol`` times the range of the native
    output; string outputs (labels) must be equal either way."""
    worst_abs = worst_rel = worst_range = 0.0
    ok = len(expected) == len(got)
    agreement = None
    for ref, out in zip(expected, got, strict=False):
        ref, out = np.asarray(ref), np.asarray(out)
        if ref.shape != out.shape:
            return {
                "ok": False,
                "why": f"output shape {list(out.shape)}, expected {list(ref.shape)}",
            }
        if ref.dtype.kind in "OUS":
            same = bool(np.all(ref.astype(str) == out.astype(str)))
            ok = ok and same
            worst_abs = max(worst_abs, 0.0 if same else float("inf"))
            continue
        ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
        diff = np.abs(ref64 - out64)
        largest = float(diff.max(initial=0.0))
        worst_abs = max(worst_abs, largest)
        scale = np.maximum(np.abs(ref64), 1e-12)
        worst_rel = max(worst_rel, float((diff / scale).max(initial=0.0)))
        spread = float(ref64.max(initial=0.0) - ref64.min(initial=0.0)) or 1.0
        worst_range = max(worst_range, largest / spread)
        if range_tol is None:
            ok = ok and bool(np.all(diff <= atol + rtol * np.abs(ref64)))
        else:
            ok = ok and largest <= range_tol * spread
        if agreement is None and ref.ndim == 2 and ref.shape[1] > 1:
            agreement = float(np.mean(ref.argmax(1) == out.argmax(1)))
    return {
        "ok": ok,
        "max_abs_error": worst_abs,
        "max_rel_error": worst_rel,
        "error_to_range": worst_range,
        "top1_agreement": agreement,
    }


# --- runners ------------------------------------------------------------------------------


def torchscript_runner(path: Path, signature: dict[str, Any]) -> Runner:
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("WORKBENCH_THREADS", "1"))))
    module = torch.jit.load(str(path), map_location="cpu").eval()
    names = [spec["name"] for spec in signature["inputs"]]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(*[torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names])
        outs = out if isinstance(out, tuple | list) else [out]
        return [o.detach().numpy() for o in outs]

    return run


def onnx_runner(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = max(1, int(os.environ.get("WORKBENCH_THREADS", "1")))
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in session.run(None, {n: inputs[n] for n in names})]

    return run


def load_sklearn(path: Path) -> Any:
    """A scikit-learn model from a skops file (only the types ``skops_trust`` allows, never
    a function: anything else is refused, not loaded), or from a joblib / pickle file
    (which runs the code it holds)."""
    if path.suffix == ".skops":
        import skops.io
        from skops_trust import UntrustedTypes, trusted_types  # beside this file

        try:
            trusted = trusted_types(path)
        except UntrustedTypes as exc:
            raise Refused(str(exc)) from exc
        return skops.io.load(path, trusted=trusted)
    import joblib

    return joblib.load(path)


def sklearn_runner(path: Path, signature: dict[str, Any]) -> Runner:
    model = load_sklearn(path)
    name = signature["inputs"][0]["name"]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = inputs[name]
        x = x.reshape(-1) if x.dtype == object else x
        outs = [np.asarray(model.predict(x))]
        if hasattr(model, "predict_proba"):
            outs.append(np.asarray(model.predict_proba(x), dtype=np.float32))
        return outs

    return run


def tensorflow_threads() -> None:
    """TensorFlow's threads, as the job's CPUs (set before TensorFlow first runs; later
    calls find them set)."""
    import tensorflow as tf

    threads = max(1, int(os.environ.get("WORKBENCH_THREADS", "1")))
    with contextlib.suppress(RuntimeError):  # already initialised, with these numbers
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def keras_runner(path: Path) -> Runner:
    tensorflow_threads()
    import keras

    model = keras.models.load_model(str(path), safe_mode=True, compile=False)
    names = [t.name for t in model.inputs]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = model([inputs[n] for n in names] if len(names) > 1 else inputs[names[0]])
        outs = out if isinstance(out, tuple | list) else [out]
        return [np.asarray(keras.ops.convert_to_numpy(o)) for o in outs]

    return run


def serving_function(folder: Path) -> Any:
    """A SavedModel's ``serving_default`` function."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    if "serving_default" not in loaded.signatures:
        raise Refused(
            f"the SavedModel has no serving_default signature (it has "
            f"{', '.join(loaded.signatures) or 'none'}): export it with one"
        )
    return loaded, loaded.signatures["serving_default"]


def savedmodel_runner(path: Path) -> Runner:
    tensorflow_threads()
    import tensorflow as tf

    folder = path.parent if path.is_file() else path
    loaded, function = serving_function(folder)
    names = list(function.structured_input_signature[1])

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = function(**{n: tf.constant(inputs[n]) for n in names})
        return [np.asarray(v) for v in out.values()]

    run.keep = loaded  # type: ignore[attr-defined]  # the variables live as long as the runner
    return run


def runner_for(kind: str, path: Path, signature: dict[str, Any]) -> Runner:
    """A runner of the model file ``path`` of kind ``torchscript``, ``sklearn``, ``onnx``,
    ``keras`` or ``savedmodel`` (its folder or its ``saved_model.pb``)."""
    if kind == "torchscript":
        return torchscript_runner(path, signature)
    if kind == "sklearn":
        return sklearn_runner(path, signature)
    if kind == "onnx":
        return onnx_runner(path)
    if kind == "keras":
        return keras_runner(path)
    if kind == "savedmodel":
        return savedmodel_runner(path)
    raise Refused(f"no runner for {kind} models here")


# --- conversions --------------------------------------------------------------------------


def to_onnx(native: str, source: Path, signature: dict[str, Any], dest: Path) -> None:
    if native == "torchscript":
        import torch

        module = torch.jit.load(str(source), map_location="cpu").eval()
        example = sample_inputs(signature, 2, 0)
        names = [spec["name"] for spec in signature["inputs"]]
        outputs = [spec["name"] for spec in signature.get("outputs", [])] or ["output"]
        axes = {n: {0: "batch"} for n in [*names, *outputs]}
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(example[n]) for n in names),
            str(dest),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            dynamo=False,  # a TorchScript module goes through the TorchScript exporter
        )
    elif native == "sklearn":
        from skl2onnx import to_onnx as skl_to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        model = load_sklearn(source)
        spec = signature["inputs"][0]
        kind = StringTensorType if spec["dtype"] == "string" else FloatTensorType
        shape = [None, *[d if d and d > 0 else None for d in spec["shape"][1:]]]
        onnx_model = skl_to_onnx(
            model,
            initial_types=[(spec["name"], kind(shape))],
            options=_sklearn_options(model),
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        dest.write_bytes(onnx_model.SerializeToString())
    elif native == "keras":
        tensorflow_threads()
        import keras
        import tensorflow as tf
        import tf2onnx

        model = keras.models.load_model(str(source), safe_mode=True, compile=False)
        specs = tuple(
            tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=t.name) for t in model.inputs
        )
        tf2onnx.convert.from_keras(model, input_signature=specs, opset=17, output_path=str(dest))
    elif native == "savedmodel":
        import subprocess

        folder = source.parent if source.is_file() else source
        command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(folder)]
        command += ["--signature_def", "serving_default", "--opset", "17", "--output", str(dest)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise Refused(f"tf2onnx failed: {done.stderr.strip()[-1500:]}")
    else:
        raise Refused(f"no ONNX conversion for {native} models here")


def to_savedmodel(native: str, source: Path, dest: Path) -> None:
    """A Keras model exported as a SavedModel folder (its serving_default signature)."""
    if native != "keras":
        raise Refused(f"no SavedModel conversion for {native} models here")
    tensorflow_threads()
    import keras

    model = keras.models.load_model(str(source), safe_mode=True, compile=False)
    model.export(str(dest), format="tf_saved_model", verbose=False)


def _sklearn_options(model: Any) -> dict[Any, dict[str, Any]]:
    """skl2onnx's options for a model or pipeline: scores as a tensor (no ZipMap), and text
    vectorizers with the C locale (images may have no other) and their token pattern."""
    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    options: dict[Any, dict[str, Any]] = {}
    for step in steps:
        if type(step).__name__ in ("TfidfVectorizer", "CountVectorizer"):
            options[id(step)] = {"locale": "C"}
            if getattr(step, "tokenizer", None) is None and step.token_pattern:
                # the vectorizer's own token pattern (RE2 has no (?u) flag), so the words
                # ONNX Runtime finds are scikit-learn's: its default separators differ
                options[id(step)]["tokenexp"] = step.token_pattern.replace("(?u)", "")
    if hasattr(model, "predict_proba"):
        options[id(steps[-1])] = {"zipmap": False}
    return options


def optimise(source: Path, dest: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dest)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


#: the operators dynamic quantization turns to INT8
QUANTIZED_OPS = {"MatMul", "Gemm", "Conv", "Attention", "LSTM", "GRU", "EmbedLayerNormalization"}


def quantize(source: Path, dest: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = {
        node.op_type for node in onnx.load(str(source)).graph.node if node.domain in ("", "ai.onnx")
    }
    if not ops & QUANTIZED_OPS:
        raise Refused(
            "nothing in this model is quantized to INT8: its graph has no MatMul, Gemm or Conv "
            f"(its operators: {', '.join(sorted(ops)) or 'only ai.onnx.ml ones'})"
        )
    # the quantizer writes files beside its input (a shape-inferred copy): give it a copy
    # in a folder of its own, as a native ONNX model's folder is mounted read-only
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "model.onnx"
        shutil.copyfile(source, copy)
        quantize_dynamic(
            str(copy),
            str(dest),
            weight_type=QuantType.QInt8,
            # a graph with ai.onnx.ml operators (scikit-learn) leaves some types to infer
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def perturb(path: Path) -> None:
    """Fault injection for the tests: scale the largest float initializer, so the numbers
    the format gives are wrong (its check must catch it)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    biggest = max(floats, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(biggest) * 1.5 + 0.1
    biggest.CopyFrom(numpy_helper.from_array(array.astype(np.float32), biggest.name))
    onnx.save(model, str(path))


# --- the job ------------------------------------------------------------------------------


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    native, source = request["native"], Path(request["native_file"])
    out, signature = Path(request["out_dir"]), request["signature"]
    atol, rtol = float(request["atol"]), float(request["rtol"])
    results: dict[str, dict[str, Any]] = {}
    #: verified formats, the ones already there first (onnx, for onnx-int8 asked alone)
    made: dict[str, Path] = {fmt: Path(path) for fmt, path in request["verified"].items()}
    reference: Runner | None = None
    labels: np.ndarray | None = None
    if request.get("samples_file"):
        inputs, labels = held_out(
            Path(request["samples_file"]), signature, int(request["held_out_samples"])
        )
    else:
        inputs = sample_inputs(signature, int(request["samples"]), int(request.get("seed", 0)))
    expected: list[np.ndarray] | None = None
    native_accuracy: float | None = None
    for fmt in request["formats"]:
        started = time.monotonic()
        print(f"[convert] {fmt}: converting", flush=True)
        folder = out / fmt
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if reference is None:
                reference = runner_for(native, source, signature)
                expected = reference(inputs)
                if labels is not None:
                    native_accuracy = accuracy(expected, labels)
            tol_abs, tol_rel, range_tol = atol, rtol, None
            runtime = "onnx"
            if fmt == "savedmodel":
                target, runtime = folder / "model", "savedmodel"
                to_savedmodel(native, source, target)
            elif fmt == "onnx":
                target = folder / "model.onnx"
                if native == "onnx":
                    raise Refused("the native model is ONNX already")
                to_onnx(native, source, signature, target)
            elif fmt in ("onnx-optimized", "onnx-int8"):
                onnx_source = made.get("onnx") or (source if native == "onnx" else None)
                if onnx_source is None:
                    raise Refused(f"{fmt} is made from the onnx format, which is not verified")
                target = folder / "model.onnx"
                if fmt == "onnx-optimized":
                    optimise(onnx_source, target)
                else:
                    quantize(onnx_source, target)
                    range_tol = float(request["int8_range_tol"])
            elif fmt == "tensorrt":
                raise Refused(
                    "TensorRT needs an NVIDIA GPU, and this container sees none: convert on a "
                    "server with a GPU (its jobs get one with gpus=1)"
                )
            else:
                raise Refused(f"{fmt} is not a format this converter makes from {native}")
            if fmt in request.get("perturb", []):
                perturb(target)
            assert expected is not None
            got = runner_for(runtime, target, signature)(inputs)
            check = compare(expected, got, tol_abs, tol_rel, range_tol)
            check.update(
                atol=tol_abs,
                rtol=tol_rel,
                range_tol=range_tol,
                samples=len(next(iter(inputs.values()))),
                inputs="random" if labels is None else "held-out",
            )
            ok = check.pop("ok")
            if labels is not None and native_accuracy is not None and "why" not in check:
                measured = accuracy(got, labels)
                drop = float(request["accuracy_drop"])
                check["evaluation"] = {
                    "metric": "accuracy",
                    "native": native_accuracy,
                    "format": measured,
                    "change": measured - native_accuracy,
                    "allowed_drop": drop if range_tol is not None else 0.0,
                }
                if range_tol is not None and measured < native_accuracy - drop:
                    ok = False
                    check["why"] = (
                        f"the held-out accuracy fell from {native_accuracy:.4f} to "
                        f"{measured:.4f}, more than the {drop:g} allowed"
                    )
            check["seconds"] = round(time.monotonic() - started, 3)
            if ok:
                made[fmt] = target
                message = (
                    f"max abs error {check['max_abs_error']:.3g}, max rel "
                    f"error {check['max_rel_error']:.3g} on {check['samples']} "
                    f"{check['inputs']} samples"
                )
                if "evaluation" in check:
                    evaluation = check["evaluation"]
                    message += (
                        f"; accuracy {evaluation['format']:.4f} (native {evaluation['native']:.4f})"
                    )
            else:
                allowed = (
                    f"{range_tol:g} x the native output's range"
                    if range_tol is not None
                    else f"{tol_abs:g} + {tol_rel:g} x |native|"
                )
                message = check.pop("why", None) or (
                    f"the check failed: max abs error {check['max_abs_error']:.3g} exceeds "
                    f"{allowed} on {check['samples']} {check['inputs']} samples"
                )
            results[fmt] = {
                "state": "verified" if ok else "failed",
                "file": target.name,
                "message": message,
                "check": check,
            }
        except Refused as exc:
            results[fmt] = {"state": "failed", "file": "", "message": str(exc), "check": {}}
        except Exception as exc:  # the framework raised: this format failed, the rest go on
            traceback.print_exc()
            results[fmt] = {
                "state": "failed",
                "file": "",
                "message": f"{type(exc).__name__}: {exc}"[:2000],
                "check": {},
            }
        print(f"[convert] {fmt}: {results[fmt]['state']}: {results[fmt]['message']}", flush=True)
    (out / "result.json").write_text(json.dumps({"formats": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
