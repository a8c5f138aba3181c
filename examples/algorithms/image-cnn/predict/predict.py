"""Serve an image-cnn model over HTTP (Workbench's inference-container contract).

Loads ``$MODEL_DIR/model.pt`` (TorchScript), ``labels.json`` and ``preprocess.json``
(written by ``train/train.py``; no training code is needed), then listens on
``0.0.0.0:$PORT``:

- ``GET /health`` -> ``{"status": "ok"}``;
- ``POST /predict`` with ``{"image": "<base64 PNG or JPEG>"}`` (a ``data:`` URL works too)
  -> ``{"label": ..., "scores": {label: p}}``;
- a bad request answers 400 with ``{"error": "..."}``.

SIGTERM stops the server at once.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

ROUTE = "/predict"
MAX_BODY_BYTES = 16 << 20


class BadRequest(Exception):
    """The request cannot be answered; the message goes back as ``{"error": ...}``."""


def decode_image(value: object) -> Image.Image:
    """The picture in a base64 string (optionally a ``data:image/...;base64,`` URL)."""
    if not isinstance(value, str) or not value:
        raise BadRequest('"image" must be a base64-encoded PNG or JPEG')
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f'"image" is not valid base64: {exc}') from None
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f'"image" is not an image Pillow can read: {exc}') from None
    return image


class Classifier:
    def __init__(self, model_dir: Path) -> None:
        self.model = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu").eval()
        self.labels: list[str] = json.loads((model_dir / "labels.json").read_text())
        preprocess = json.loads((model_dir / "preprocess.json").read_text())
        self.size = int(preprocess["img_size"])
        self.channels = int(preprocess["channels"])
        self.mean = float(preprocess["mean"])
        self.std = float(preprocess["std"])

    def tensor(self, image: Image.Image) -> torch.Tensor:
        """``image`` as the network's input ``[1, C, H, W]``, prepared like in training."""
        picture = image.convert("L" if self.channels == 1 else "RGB").resize(
            (self.size, self.size), Image.Resampling.BILINEAR
        )
        data = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
        pixels = data.view(self.size, self.size, self.channels).permute(2, 0, 1).float() / 255
        return ((pixels - self.mean) / self.std).unsqueeze(0)

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        image = decode_image(body.get("image"))
        with torch.no_grad():
            probabilities = torch.softmax(self.model(self.tensor(image))[0], 0).tolist()
        scores = {label: round(p, 4) for label, p in zip(self.labels, probabilities, strict=True)}
        best = max(range(len(self.labels)), key=lambda i: probabilities[i])
        return {"label": self.labels[best], "scores": scores}


def make_handler(classifier: Classifier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "image-cnn/1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/health":
                self.answer(200, {"status": "ok"})
            else:
                self.answer(404, {"error": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != ROUTE:
                self.answer(404, {"error": f"no route POST {self.path}; use POST {ROUTE}"})
                return
            try:
                self.answer(200, classifier.predict(self.read_json()))
            except BadRequest as exc:
                self.answer(400, {"error": str(exc)})

        def read_json(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                raise BadRequest(f"send a JSON object of at most {MAX_BODY_BYTES} bytes")
            try:
                body = json.loads(self.rfile.read(length))
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequest(f"the body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return body

        def answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


def main() -> int:
    model_dir = Path(os.environ.get("MODEL_DIR") or "/workbench/model")
    port = int(os.environ.get("PORT") or 8080)
    torch.set_num_threads(1)
    classifier = Classifier(model_dir)
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(classifier))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(
        f"serving {len(classifier.labels)} classes at {classifier.size}x{classifier.size} "
        f"on port {port}",
        flush=True,
    )
    server.serve_forever()
    server.server_close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
