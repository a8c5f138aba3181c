"""The model server's routes (:meth:`ModelServer.respond`; :mod:`workbench.serving.http`
serves them over HTTP):

- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /health`` (the inference
  container's contract);
- ``GET /v2`` (server metadata), ``GET /v2/models/{m}[/versions/{v}]`` (model metadata),
  ``.../ready``, ``.../config`` (read-only, in Triton's model-configuration shape);
- ``POST /v2/models/{m}[/versions/{v}]/infer``: JSON tensors or the binary tensor extension;
- ``POST /predict`` (the simple JSON route): ``{"<input>": <one sample>}`` in (an input
  with a default may be left out), ``{"<output>": <its value>}`` out;
- ``GET /metrics``: Prometheus.

Errors answer ``{"error": "..."}``: 400 for a request the model cannot take (a Python
predictor says so by raising :class:`~workbench.serving.runtimes.BadInput`), 404 for an
unknown model, version or route, 405 for a wrong method, 413 for a body over the limit,
503 when the queue is full, 500 when the model raises anything else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from workbench import __version__
from workbench.serving.batching import Batcher, Overloaded, Tensors
from workbench.serving.metrics import Metrics
from workbench.serving.protocol import (
    DATATYPES,
    HEADER_LENGTH,
    ProtocolError,
    TensorSpec,
    decode_infer,
    encode_infer,
)
from workbench.serving.runtimes import PLATFORMS, Runtime

#: an answer: its status, body and headers (HTTP header lines, each ending in CRLF)
Answer = tuple[int, bytes, bytes]
#: what is called with a request's answer
Reply = Callable[[Answer], None]
#: a request header by its lowercase name (None: not sent)
Header = Callable[[bytes], "bytes | None"]
JSON = b"content-type: application/json\r\n"
BINARY = b"content-type: application/octet-stream\r\n"
TEXT = b"content-type: text/plain; version=0.0.4\r\n"
HEADER_BYTES = HEADER_LENGTH.encode()  # the request's and the answer's
#: Triton's names of the V2 datatypes (a model configuration's ``data_type``)
TRITON_TYPES = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
    "FP64": "TYPE_FP64",
    "BYTES": "TYPE_STRING",
}


class ModelServer:
    """Serves one model version (see the module doc)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        version: str = "1",
        max_batch: int = 32,
        max_delay_s: float = 0.005,
        max_queue: int = 256,
        max_body_bytes: int = 64 * 1024**2,
        max_elements: int | None = None,
        threads: int = 1,
    ) -> None:
        """``max_elements``: of one input tensor at most (default: ``max_body_bytes``, as
        no element takes less than a byte in any encoding), checked on its shape before
        anything is allocated for it. ``threads``: the runtime's; the model runs in a
        thread of its own when the process has more cores than that
        (:mod:`workbench.serving.batching`)."""
        self.runtime = runtime
        self.name = name
        self.version = version
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_body_bytes = max_body_bytes
        self.max_elements = max_body_bytes if max_elements is None else max_elements
        self.metrics = Metrics()
        self._inputs = {spec.name: spec for spec in runtime.inputs}
        batched = max_batch > 1 and all(s.shape[:1] == (-1,) for s in runtime.inputs)
        self.batcher = Batcher(
            runtime.run,
            max_batch=max_batch if batched else 1,
            max_delay_s=max_delay_s,
            max_queue=max_queue,
            metrics=self.metrics,
            offload=len(os.sched_getaffinity(0)) > threads,
        )
        base = f"/v2/models/{name}"
        versioned = f"{base}/versions/{version}"
        self._model_paths = {base, versioned}
        self._static: dict[str, bytes] = {
            "/v2/health/live": b'{"live":true}',
            "/v2/health/ready": b'{"ready":true}',
            "/health": b'{"status":"ok"}',
            "/v2": orjson.dumps(
                {
                    "name": "workbench",
                    "version": __version__,
                    "extensions": ["binary_tensor_data", "model_configuration"],
                }
            ),
        }
        metadata = orjson.dumps(
            {
                "name": name,
                "versions": [version],
                "platform": PLATFORMS[runtime.name],
                "inputs": [s.as_json() for s in runtime.inputs],
                "outputs": [s.as_json() for s in runtime.outputs],
            }
        )
        ready = orjson.dumps({"name": name, "ready": True})
        config = orjson.dumps(self._config())
        for path in self._model_paths:
            self._static[path] = metadata
            self._static[f"{path}/ready"] = ready
            self._static[f"{path}/config"] = config
        self._infer = {f"{p}/infer" for p in self._model_paths}

    def _config(self) -> dict[str, Any]:
        batched = self.batcher.max_batch > 1

        def entry(spec: TensorSpec) -> dict[str, Any]:
            dims = list(spec.shape[1:] if batched else spec.shape)
            return {"name": spec.name, "data_type": TRITON_TYPES[spec.datatype], "dims": dims}

        config: dict[str, Any] = {
            "name": self.name,
            "platform": PLATFORMS[self.runtime.name],
            "max_batch_size": self.batcher.max_batch if batched else 0,
            "input": [entry(s) for s in self.runtime.inputs],
            "output": [entry(s) for s in self.runtime.outputs],
        }
        if batched:
            config["dynamic_batching"] = {
                "max_queue_delay_microseconds": int(self.max_delay_s * 1e6)
            }
        return config

    # --- the routes ----------------------------------------------------------------------

    def respond(self, method: str, path: str, header: Header, body: bytes, reply: Reply) -> None:
        """Answers one request by calling ``reply`` with its status, body and headers: at once,
        or, for an inference, when its batch has run. ``header(name)``: a request header
        (lowercase name)."""
        if path in self._infer:
            if method != "POST":
                reply(error_answer(405, f"{path} takes POST"))
            else:
                self._answer_infer(header, body, reply)
        elif path == "/predict":
            if method != "POST":
                reply(error_answer(405, "/predict takes POST"))
            else:
                self._answer_predict(body, reply)
        else:
            reply(self._answer_get(path))

    def _answer_get(self, path: str) -> Answer:
        static = self._static.get(path)
        if static is not None:
            self.metrics.answered(_route(path), 200)
            return 200, static, JSON
        if path == "/metrics":
            return 200, self.metrics.exposition(), TEXT
        if path.startswith("/v2/models/"):
            return error_answer(404, self._unknown_model(path))
        return error_answer(404, f"no route {path}; see /v2 and /v2/models/{self.name}")

    def close(self) -> None:
        self.batcher.close()

    def _unknown_model(self, path: str) -> str:
        parts = path.split("/")
        asked = parts[3] if len(parts) > 3 else ""
        if asked != self.name:
            return f"unknown model {asked!r}: this server serves {self.name!r}"
        if len(parts) > 5 and parts[4] == "versions" and parts[5] != self.version:
            return (
                f"unknown version {parts[5]!r} of {self.name!r}: it serves version {self.version}"
            )
        return f"no route {path}"

    def too_large(self, size: int) -> str:
        """What a client sending a body of ``size`` bytes, over the limit, is told (413)."""
        return (
            f"the body is {size} bytes, over this server's limit of {self.max_body_bytes}; "
            "send smaller batches"
        )

    def _counted(self, route: str, reply: Reply) -> Reply:
        """``reply``, counting the answer and its latency from now in the metrics."""
        started = time.perf_counter()

        def answer(outcome: Answer) -> None:
            self.metrics.answered(route, outcome[0], time.perf_counter() - started)
            reply(outcome)

        return answer

    def _answer_infer(self, header: Header, body: bytes, reply: Reply) -> None:
        answer = self._counted("infer", reply)
        try:
            length = header(HEADER_BYTES)
            request = decode_infer(
                body,
                int(length) if length and length.isdigit() else None,
                self._inputs,
                self.max_elements,
            )
        except ProtocolError as exc:
            answer(error_answer(exc.status, exc.message))
            return

        def encoded(outputs: Tensors) -> Answer:
            payload, json_length = encode_infer(
                self.name, self.version, request, outputs, self.runtime.outputs
            )
            if json_length is None:
                return 200, payload, JSON
            return 200, payload, BINARY + b"%s: %d\r\n" % (HEADER_BYTES, json_length)

        self._submit(request.inputs, encoded, answer)

    def _answer_predict(self, body: bytes, reply: Reply) -> None:
        answer = self._counted("predict", reply)
        try:
            try:
                sample = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ProtocolError(f"the body is not JSON ({exc})") from exc
            inputs = self._one_sample(sample)
        except ProtocolError as exc:
            answer(error_answer(exc.status, exc.message))
            return

        def encoded(outputs: Tensors) -> Answer:
            plain = {k: _plain(v[0]) for k, v in outputs.items()}
            return 200, orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY), JSON

        self._submit(inputs, encoded, answer)

    def _submit(self, inputs: Tensors, encoded: Callable[[Tensors], Answer], answer: Reply) -> None:
        """Queues ``inputs`` for the model; ``answer`` gets ``encoded(outputs)``, or the error:
        the queue full (503), the model refused the request (400) or failed (500), the
        outputs not what was asked (400)."""

        def ran(outputs: Tensors | None, failure: BaseException | None) -> None:
            if isinstance(failure, ProtocolError):  # the model refused this request (400)
                answer(error_answer(failure.status, failure.message))
                return
            if failure is not None:
                answer(_failed(failure))
                return
            assert outputs is not None
            try:
                answer(encoded(outputs))
            except ProtocolError as exc:
                answer(error_answer(exc.status, exc.message))

        try:
            self.batcher.submit(inputs, ran)
        except Overloaded as exc:
            answer(error_answer(503, str(exc)))

    def _one_sample(self, sample: Any) -> dict[str, np.ndarray]:
        names = list(self._inputs)
        example = ", ".join(f'"{n}": ...' for n in names)
        if not isinstance(sample, dict):
            raise ProtocolError(f"send one sample as a JSON object: {{{example}}}")
        unknown = [k for k in sample if k not in names]
        missing = [n for n in names if n not in sample and self._inputs[n].default is None]
        if unknown or missing:
            raise ProtocolError(
                f"the model takes {{{example}}}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        inputs = {}
        for spec in self.runtime.inputs:
            value = sample.get(spec.name, spec.default)
            try:
                if spec.datatype == "BYTES":
                    array = np.array(
                        [value.encode() if isinstance(value, str) else value], dtype=object
                    )
                else:
                    array = np.asarray([value], dtype=DATATYPES[spec.datatype])
            except (TypeError, ValueError) as exc:
                raise ProtocolError(f"{spec.name}: not {spec.datatype} values ({exc})") from exc
            want = spec.shape[1:]
            if array.ndim - 1 != len(want) or any(
                w >= 0 and g != w for g, w in zip(array.shape[1:], want, strict=True)
            ):
                shape = "[" + ", ".join("N" if d < 0 else str(d) for d in want) + "]"
                raise ProtocolError(
                    f"{spec.name} has shape {list(array.shape[1:])}, one sample of the model "
                    f"is {shape}"
                )
            inputs[spec.name] = array
        return inputs


def _failed(failure: BaseException) -> Answer:
    """What a client is told when its batch failed: the model raised on it (500)."""
    message = f"the model failed on this request: {type(failure).__name__}: {failure}"
    return error_answer(500, message[:1000])


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _route(path: str) -> str:
    return "health" if "health" in path else "metadata"


def error_answer(status: int, message: str) -> Answer:
    """An error's answer: ``{"error": message}``."""
    return status, orjson.dumps({"error": message}), JSON
