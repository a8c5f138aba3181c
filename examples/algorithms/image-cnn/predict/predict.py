"""image-cnn's inference: a Python predictor, served by the Workbench model server
(``python -m workbench.serving --runtime python --predictor /app/predict.py``, the
Dockerfile's command) by the inference-container contract (docs/contracts.md).

Loads ``$MODEL_DIR/model.pt`` (TorchScript), ``labels.json`` and ``preprocess.json``
(written by ``train/train.py``; no training code is needed). The server then answers on
``0.0.0.0:$PORT``:

- ``GET /health`` -> ``{"status": "ok"}``;
- ``POST /predict`` with ``{"image": "<base64 PNG or JPEG>"}`` (a ``data:`` URL works too)
  -> ``{"label": ..., "scores": {label: p}}``;
- a bad request 400 with ``{"error": "..."}``;

and it stops on SIGTERM. Requests that arrive together run through the network as one
batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from workbench.serving.pictures import Preprocess, decode_image


class Predictor:
    """The network as the model server runs it (its python runtime): loaded once from the
    model's folder, then ``predict`` on a batch of images, run through it at once."""

    #: an image (base64) in; its label and ``{label: p}`` out (a JSON value per image)
    signature: ClassVar[dict[str, Any]] = {
        "inputs": [{"name": "image", "dtype": "string", "shape": [-1]}],
        "outputs": [{"name": n, "dtype": "string", "shape": [-1]} for n in ("label", "scores")],
    }

    def __init__(self, model_dir: str) -> None:
        folder = Path(model_dir)
        self.model = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
        self.labels: list[str] = json.loads((folder / "labels.json").read_text())
        self.preprocess = Preprocess.read(folder)
        size = self.preprocess.size
        print(f"serving {len(self.labels)} classes at {size}x{size}", flush=True)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        pictures = [self.preprocess.array(decode_image(v)) for v in inputs["image"]]
        batch = torch.from_numpy(np.stack(pictures))
        with torch.no_grad():
            probabilities = torch.softmax(self.model(batch), 1).tolist()
        return {
            "label": [
                self.labels[max(range(len(row)), key=row.__getitem__)] for row in probabilities
            ],
            "scores": [
                {label: round(p, 4) for label, p in zip(self.labels, row, strict=True)}
                for row in probabilities
            ],
        }
