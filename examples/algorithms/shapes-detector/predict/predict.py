"""shapes-detector's inference: a Python predictor, served by the Workbench model server
(``python -m workbench.serving --runtime python --predictor /app/predict.py``, the
Dockerfile's command) by the inference-container contract (docs/contracts.md).

Loads ``$MODEL_DIR/model.pt`` (TorchScript with its decoding), ``labels.json`` and
``preprocess.json`` (written by ``train/train.py``; no training code is needed). The server
then answers on ``0.0.0.0:$PORT``:

- ``GET /health`` -> ``{"status": "ok"}``;
- ``POST /predict`` with ``{"image": "<base64 PNG or JPEG>"}`` (a ``data:`` URL works too)
  and optionally ``"score_threshold"`` (default: the one trained with) ->
  ``{"boxes": [{"label": ..., "score": ..., "box": [x, y, w, h]}, ...]}``, best first, in
  the pixels of the image sent;
- a bad request 400 with ``{"error": "..."}``;

and it stops on SIGTERM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.serving.pictures import Preprocess, decode_image


class Predictor:
    """The detector as the model server runs it (its python runtime): loaded once from the
    model's folder, then ``predict`` on a batch of images; its signature names the
    threshold it was trained with as the default."""

    def __init__(self, model_dir: str) -> None:
        folder = Path(model_dir)
        self.model = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
        self.labels: list[str] = json.loads((folder / "labels.json").read_text())
        self.preprocess = Preprocess.read(folder)
        threshold = float(json.loads((folder / "preprocess.json").read_text())["score_threshold"])
        # the threshold may be left out of a request: the one trained with
        self.signature = {
            "inputs": [
                {"name": "image", "dtype": "string", "shape": [-1]},
                {
                    "name": "score_threshold",
                    "dtype": "float32",
                    "shape": [-1],
                    "default": threshold,
                },
            ],
            "outputs": [{"name": "boxes", "dtype": "string", "shape": [-1]}],  # a list per image
        }
        size = self.preprocess.size
        print(f"detecting {', '.join(self.labels)} at {size}x{size}", flush=True)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        images = [decode_image(v) for v in inputs["image"]]
        with torch.no_grad():
            batch = np.stack([self.preprocess.array(image) for image in images])
            found = self.model(torch.from_numpy(batch)).tolist()
        return {
            "boxes": [
                self.boxes(rows, image, float(threshold))
                for rows, image, threshold in zip(
                    found, images, inputs["score_threshold"], strict=True
                )
            ]
        }

    def boxes(self, rows: list[list[float]], image: Image.Image, threshold: float) -> list[Any]:
        """One image's detections over ``threshold``, in the pixels of the image sent."""
        sx, sy = image.width / self.preprocess.size, image.height / self.preprocess.size
        return [
            {
                "label": self.labels[int(label)],
                "score": round(score, 4),
                "box": [round(x * sx, 1), round(y * sy, 1), round(w * sx, 1), round(h * sy, 1)],
            }
            for x, y, w, h, score, label in rows
            if score >= threshold
        ]
