"""Converts one model version to deployment formats and checks each against the native
model, inside a container of the version's environment image (the job kind in
``workbench/models/jobs.py`` mounts this file, the native files read-only and an output
folder, and runs ``python convert.py REQUEST``).

It imports nothing from Workbench: only the standard library, NumPy and the frameworks the
image has (torch, onnx, onnxruntime, scikit-learn, skl2onnx), each when a format needs it.

The request (JSON) names the native model file and its kind (``torchscript``, ``sklearn``,
``onnx``), the formats wanted in order, the
signature (inputs with shapes, -1 for a dynamic axis), the tolerance and the number of
sample inputs. The answer, ``result.json`` in the output folder, has one entry per format:
``state`` (``verified`` or ``failed``), ``file`` (in ``<out>/<format>/``), ``message`` and
``check`` (``max_abs_error``, ``max_rel_error``, ``atol``, ``rtol``, ``samples``,
``top1_agreement``, ``seconds``). A format that cannot be made or checked is ``failed`` with
why; the others go on.
"""

from __future__ import annotations

import json
import os
import sys
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


def sklearn_runner(path: Path, signature: dict[str, Any]) -> Runner:
    import joblib

    model = joblib.load(path)
    name = signature["inputs"][0]["name"]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = inputs[name]
        x = x.reshape(-1) if x.dtype == object else x
        outs = [np.asarray(model.predict(x))]
        if hasattr(model, "predict_proba"):
            outs.append(np.asarray(model.predict_proba(x), dtype=np.float32))
        return outs

    return run


def runner_for(kind: str, path: Path, signature: dict[str, Any]) -> Runner:
    """A runner of the model file ``path`` of kind ``torchscript``, ``sklearn`` or ``onnx``."""
    if kind == "torchscript":
        return torchscript_runner(path, signature)
    if kind == "sklearn":
        return sklearn_runner(path, signature)
    if kind == "onnx":
        return onnx_runner(path)
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
        import joblib
        from skl2onnx import to_onnx as skl_to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        model = joblib.load(source)
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
    else:
        raise Refused(f"no ONNX conversion for {native} models here")


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
    quantize_dynamic(
        str(source),
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
    inputs = sample_inputs(signature, int(request["samples"]), int(request.get("seed", 0)))
    for fmt in request["formats"]:
        started = time.monotonic()
        print(f"[convert] {fmt}: converting", flush=True)
        folder = out / fmt
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if reference is None:
                reference = runner_for(native, source, signature)
            tol_abs, tol_rel, range_tol = atol, rtol, None
            if fmt == "onnx":
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
            check = compare(
                reference(inputs), onnx_runner(target)(inputs), tol_abs, tol_rel, range_tol
            )
            check.update(
                atol=tol_abs,
                rtol=tol_rel,
                range_tol=range_tol,
                samples=len(next(iter(inputs.values()))),
                seconds=round(time.monotonic() - started, 3),
            )
            ok = check.pop("ok")
            if ok:
                made[fmt] = target
                message = (
                    f"max abs error {check['max_abs_error']:.3g}, max rel "
                    f"error {check['max_rel_error']:.3g} on {check['samples']} samples"
                )
            else:
                allowed = (
                    f"{range_tol:g} x the native output's range"
                    if range_tol is not None
                    else f"{tol_abs:g} + {tol_rel:g} x |native|"
                )
                message = check.pop("why", None) or (
                    f"the check failed: max abs error {check['max_abs_error']:.3g} exceeds "
                    f"{allowed} on {check['samples']} samples"
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
