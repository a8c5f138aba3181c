"""text-bayes's inference: a Python predictor, served by the Workbench model server
(``python -m workbench.serving --runtime python --predictor /app/predict.py``, the
Dockerfile's command) by the inference-container contract (docs/contracts.md).

Loads ``$MODEL_DIR/model.joblib`` (written by ``train/train.py``). The server then answers
on ``0.0.0.0:$PORT``:

- ``GET /health`` -> ``{"status": "ok"}``;
- ``POST /predict`` with ``{"text": "..."}`` -> ``{"label": ..., "scores": {label: p}}``;
- a bad request 400 with ``{"error": "..."}``;

and it stops on SIGTERM. Requests that arrive together are classified as one batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np

from workbench.serving.runtimes import BadInput


def text_of(value: object) -> str:
    """One sample's ``text`` (the server hands strings on as UTF-8 bytes)."""
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            raise BadInput('"text" must be UTF-8 text') from None
    if not isinstance(value, str) or not value.strip():
        raise BadInput('"text" must be a non-empty string')
    return value


class Predictor:
    """What the model server calls (its python runtime): built once with the model's
    folder, then ``predict`` on a batch of texts, the batch axis first."""

    #: a text in; its label and ``{label: p}`` out (a JSON value per text)
    signature: ClassVar[dict[str, Any]] = {
        "inputs": [{"name": "text", "dtype": "string", "shape": [-1]}],
        "outputs": [{"name": n, "dtype": "string", "shape": [-1]} for n in ("label", "scores")],
    }

    def __init__(self, model_dir: str) -> None:
        self.model = joblib.load(Path(model_dir) / "model.joblib")
        self.labels = [str(label) for label in self.model.classes_]
        print(f"serving {len(self.labels)} classes", flush=True)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        probabilities = self.model.predict_proba([text_of(v) for v in inputs["text"]])
        return {
            "label": [self.labels[i] for i in probabilities.argmax(axis=1)],
            "scores": [
                {label: round(float(p), 4) for label, p in zip(self.labels, row, strict=True)}
                for row in probabilities
            ],
        }
