"""Serve a text-bayes model over HTTP (Workbench's inference-container contract).

Loads ``$MODEL_DIR/model.joblib`` (written by ``train/train.py``), then listens on
``0.0.0.0:$PORT``:

- ``GET /health`` -> ``{"status": "ok"}``;
- ``POST /predict`` with ``{"text": "..."}`` -> ``{"label": ..., "scores": {label: p}}``;
- a bad request answers 400 with ``{"error": "..."}``.

SIGTERM stops the server at once. Only the standard library and scikit-learn are used.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import joblib

ROUTE = "/predict"
MAX_BODY_BYTES = 1 << 20


class BadRequest(Exception):
    """The request cannot be answered; the message goes back as ``{"error": ...}``."""


class Classifier:
    def __init__(self, model_dir: Path) -> None:
        self.model = joblib.load(model_dir / "model.joblib")
        self.labels = [str(label) for label in self.model.classes_]

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest('"text" must be a non-empty string')
        probabilities = self.model.predict_proba([text])[0]
        scores = {
            label: round(float(p), 4) for label, p in zip(self.labels, probabilities, strict=True)
        }
        best = max(range(len(self.labels)), key=lambda i: probabilities[i])
        return {"label": self.labels[best], "scores": scores}


def make_handler(classifier: Classifier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "text-bayes/1"

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
    classifier = Classifier(model_dir)
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(classifier))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving {len(classifier.labels)} classes on port {port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
