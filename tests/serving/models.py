"""Small real models for the model server's tests, made here: an ONNX CNN (8x8 images,
3 classes) with a dynamic batch axis, and a Python predictor that can be told to be slow or
to fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CNN_SIGNATURE = {
    "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, 8, 8]}],
    "outputs": [{"name": "scores", "dtype": "float32", "shape": [-1, 3]}],
}


def make_cnn(path: Path, seed: int = 0) -> Path:
    """image [N, 1, 8, 8] -> Conv(4, 3x3) -> Relu -> Flatten -> Gemm -> scores [N, 3]."""
    rng = np.random.default_rng(seed)

    def tensor(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
        [tensor("w", (4, 1, 3, 3)), tensor("b", (4,)), tensor("fw", (256, 3)), tensor("fb", (3,))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


PREDICTOR = '''
import time
from pathlib import Path

import numpy as np


class Predictor:
    """Doubles its input; sleeps SLOW seconds a batch; raises on a negative first value."""

    def __init__(self, model_dir):
        self.slow = float((Path(model_dir) / "slow.txt").read_text())

    def predict(self, inputs):
        x = inputs["x"]
        if (x[:, 0] < 0).any():
            raise ValueError("negative values are refused")
        time.sleep(self.slow)
        return {"y": x * 2, "rows": np.full(len(x), len(x), dtype=np.int64)}
'''


def make_predictor(folder: Path, slow: float = 0.0) -> Path:
    """A ``python`` runtime model: ``x`` float32 [N, 2] -> ``y`` = 2x and ``rows`` (the
    size of the batch it ran in)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictor.py").write_text(PREDICTOR)
    (folder / "slow.txt").write_text(str(slow))
    signature = {
        "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 2]}],
        "outputs": [
            {"name": "y", "dtype": "float32", "shape": [-1, 2]},
            {"name": "rows", "dtype": "int64", "shape": [-1]},
        ],
    }
    (folder / "signature.json").write_text(json.dumps(signature))
    return folder
