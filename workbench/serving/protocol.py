"""The Open Inference Protocol (KServe V2) over REST: a request's tensors decoded and
checked against the model's inputs, and outputs encoded, in JSON or with the binary tensor
extension (a JSON header, then the tensors' raw little-endian bytes, the header's length in
``Inference-Header-Content-Length``). Every error is a :class:`ProtocolError` whose message
says what was wrong and what to send instead; it becomes ``{"error": message}``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

#: V2 datatype -> numpy dtype (BYTES: objects holding bytes)
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
#: numpy dtype name -> V2 datatype (text is BYTES)
V2_OF = {dtype.name: name for name, dtype in DATATYPES.items() if name != "BYTES"}
#: V2 datatype -> its little-endian numpy dtype (the binary extension's byte order)
LITTLE = {name: dtype.newbyteorder("<") for name, dtype in DATATYPES.items() if name != "BYTES"}
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(Exception):
    """A request the server cannot answer as asked: ``status`` and a message that says
    what to send instead."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model: its name, V2 datatype and shape (-1: any size;
    the batch axis first); ``default``: an input's value for one sample when the simple
    route's request leaves it out (None: it must be sent)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    default: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def v2_datatype(dtype: np.dtype[Any] | str) -> str:
    """The V2 datatype of a numpy dtype (strings and objects are BYTES)."""
    known = _V2_CACHE.get(dtype)
    if known is None:
        found = np.dtype(dtype)
        known = _V2_CACHE[dtype] = "BYTES" if found.kind in "OSU" else V2_OF[found.name]
    return known


#: dtype -> its V2 datatype, as found (every response asks)
_V2_CACHE: dict[Any, str] = {}


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    #: the outputs asked for (None: all), each with whether it is wanted as binary
    outputs: dict[str, bool] | None
    #: every output in binary unless it says otherwise (``binary_data_output``)
    binary_default: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def decode_infer(
    body: bytes,
    header_length: int | None,
    expected: Mapping[str, TensorSpec],
    max_elements: int,
) -> InferRequest:
    """The request of ``POST .../infer``, its tensors checked against the model's inputs
    (``expected``, by name). A tensor's element count (its shape's product) is checked
    against ``max_elements`` and against the data given before anything is allocated for
    it: a shape is the client's word, not a size to trust."""
    json_part, binary = _split(body, header_length)
    try:
        request = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the body is not JSON ({exc}); send a V2 inference request") from exc
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ProtocolError(
            'a V2 inference request is an object with "inputs": [{"name", "shape", '
            '"datatype", "data"}]'
        )
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for raw in request["inputs"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ProtocolError('each input is an object with a "name"')
        name = raw["name"]
        spec = expected.get(name)
        if spec is None:
            raise ProtocolError(
                f"unknown input {name!r}: the model takes {', '.join(expected)}", status=400
            )
        if name in tensors:
            raise ProtocolError(f"input {name!r} is given twice")
        shape = _shape(raw.get("shape"), name)
        datatype = raw.get("datatype")
        if datatype != spec.datatype:
            raise ProtocolError(
                f"input {name!r} is {datatype}, the model takes {spec.datatype}; send it as "
                f"{spec.datatype}"
            )
        _check_shape(name, shape, spec.shape)
        count = math.prod(shape)  # of at most the model's few dimensions
        if count > max_elements:
            raise ProtocolError(
                f"input {name!r} has shape {list(shape)}: {count} elements, over this "
                f"server's limit of {max_elements} a tensor; send smaller batches"
            )
        size = _binary_size(raw)
        if size is not None:
            if offset + size > len(binary):
                raise ProtocolError(
                    f"input {name!r} says it has {size} binary bytes, the body has "
                    f"{len(binary) - offset} left"
                )
            blob = binary[offset : offset + size]
            tensors[name] = _from_binary(blob, shape, count, datatype, name)
            offset += size
        else:
            if "data" not in raw:
                raise ProtocolError(f'input {name!r} has no "data" (nor binary_data_size)')
            tensors[name] = _from_json(raw["data"], shape, count, datatype, name)
    if len(tensors) != len(expected):
        missing = [name for name in expected if name not in tensors]
        raise ProtocolError(
            f"missing input {', '.join(map(repr, missing))}: the model takes all of "
            f"{', '.join(expected)}"
        )
    if len(tensors) > 1:
        batches = {t.shape[0] for t in tensors.values() if t.ndim}
        if len(batches) > 1:
            raise ProtocolError(f"the inputs' batch sizes differ ({sorted(batches)}); give one")
    parameters = request.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    wanted: dict[str, bool] | None = None
    outputs = request.get("outputs")
    if isinstance(outputs, list):
        wanted = {}
        for out in outputs:
            name = out.get("name") if isinstance(out, dict) else None
            if not isinstance(name, str):
                raise ProtocolError('each requested output is an object with a "name"')
            params = out.get("parameters")
            wanted[name] = isinstance(params, dict) and bool(params.get("binary_data", False))
    request_id = request.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=tensors,
        outputs=wanted,
        binary_default=bool(parameters.get("binary_data_output", False)),
        parameters=parameters,
    )


def encode_infer(
    model: str,
    version: str,
    request: InferRequest,
    outputs: dict[str, np.ndarray],
    specs: list[TensorSpec],
) -> tuple[bytes, int | None]:
    """The response body: JSON, or a JSON header and the binary outputs when any output is
    asked for in binary; and then the JSON header's length (the answer's
    ``Inference-Header-Content-Length``), else None."""
    known = {spec.name for spec in specs}
    if request.outputs is not None:
        unknown = [name for name in request.outputs if name not in known]
        if unknown:
            raise ProtocolError(
                f"unknown output {', '.join(map(repr, unknown))}: the model gives "
                f"{', '.join(sorted(known))}"
            )
        chosen = request.outputs
    else:
        chosen = {spec.name: request.binary_default for spec in specs}
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in chosen.items():
        array = outputs[name]
        entry: dict[str, Any] = {
            "name": name,
            "datatype": v2_datatype(array.dtype),
            "shape": list(array.shape),
        }
        if binary or (request.outputs is not None and request.binary_default):
            blob = _to_binary(array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _to_json(array)
        described.append(entry)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": described}
    if request.id is not None:
        body["id"] = request.id
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


# --- tensors ------------------------------------------------------------------------------


def _split(body: bytes, header_length: int | None) -> tuple[memoryview, memoryview]:
    """The JSON header and the binary part, views of ``body`` (the tensors are not copied)."""
    view = memoryview(body)
    if header_length is None:
        return view, view[:0]
    if header_length < 0 or header_length > len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length is {header_length}, the body has {len(body)} bytes"
        )
    return view[:header_length], view[header_length:]


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if type(value) is list:
        for d in value:
            if type(d) is not int or d < 0:
                break
        else:
            return tuple(value)
    raise ProtocolError(f'input {name!r} needs "shape": a list of sizes, e.g. [1, 3, 32, 32]')


def _check_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    fits = len(shape) == len(expected)
    if fits:
        for got, want in zip(shape, expected, strict=True):
            if want >= 0 and got != want:
                fits = False
                break
    if not fits:
        wanted = "[" + ", ".join("N" if d < 0 else str(d) for d in expected) + "]"
        raise ProtocolError(f"input {name!r} has shape {list(shape)}, the model takes {wanted}")


def _binary_size(raw: dict[str, Any]) -> int | None:
    params = raw.get("parameters")
    if not isinstance(params, dict) or "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if not isinstance(size, int) or size < 0:
        raise ProtocolError(f"input {raw['name']!r}: binary_data_size is not a size")
    return size


def _from_json(
    data: Any, shape: tuple[int, ...], count: int, datatype: str, name: str
) -> np.ndarray:
    given = _given(data)
    if given != count:
        raise ProtocolError(
            f"input {name!r} has {given} values, its shape {list(shape)} needs {count}"
        )
    try:
        if datatype == "BYTES":
            flat = np.array(_flatten(data, count), dtype=object)
            flat = np.array(
                [v.encode() if isinstance(v, str) else v for v in flat.tolist()], dtype=object
            )
        else:
            flat = np.asarray(data, dtype=DATATYPES[datatype]).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"input {name!r}: its data are not {datatype} values ({exc})") from exc
    if flat.size != count:  # ragged lists
        has = f"more than {count}" if flat.size > count else flat.size
        raise ProtocolError(
            f"input {name!r} has {has} values, its shape {list(shape)} needs {count}"
        )
    return flat.reshape(shape)


def _given(data: Any) -> int:
    """How many values ``data`` holds if its lists are regular: the product of the lengths
    along its first items (ragged data are refused later, by NumPy or :func:`_flatten`).
    Read without a copy and without recursion, however deep the lists."""
    given = 1
    while isinstance(data, list):
        given *= len(data)
        if not data:
            break
        data = data[0]
    return given


def _flatten(data: Any, count: int) -> list[Any]:
    """The values of nested lists, in order; without recursion, and no more than ``count``
    plus one (enough to know that there are too many)."""
    out: list[Any] = []
    stack = [iter([data])]
    while stack and len(out) <= count:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            out.append(item)
    return out


_END = object()


def _from_binary(
    blob: memoryview, shape: tuple[int, ...], count: int, datatype: str, name: str
) -> np.ndarray:
    if datatype == "BYTES":
        items: list[bytes] = []  # its elements are bytes objects
        at = 0
        while at < len(blob) and len(items) <= count:  # one more says there are too many
            if at + 4 > len(blob):
                raise ProtocolError(f"input {name!r}: a BYTES element's length is cut off")
            length = int.from_bytes(blob[at : at + 4], "little")
            items.append(bytes(blob[at + 4 : at + 4 + length]))
            at += 4 + length
        if len(items) != count:
            has = f"more than {count}" if len(items) > count else len(items)
            raise ProtocolError(
                f"input {name!r} has {has} elements, its shape {list(shape)} needs {count}"
            )
        return np.array(items, dtype=object).reshape(shape)
    dtype = LITTLE[datatype]
    if len(blob) != count * dtype.itemsize:
        raise ProtocolError(
            f"input {name!r} has {len(blob)} bytes, shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(blob, dtype=dtype).reshape(shape)


def _to_json(array: np.ndarray) -> Any:
    if array.dtype.kind in "OSU":
        return [_text(v) for v in array.reshape(-1).tolist()]
    return array.reshape(-1)


def _text(value: Any) -> str:
    """A BYTES element as text: bytes decoded, a string as it is, any other value (a
    Python predictor's dict or list) as its JSON."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _to_binary(array: np.ndarray) -> bytes:
    if array.dtype.kind in "OSU":
        parts = []
        for value in array.reshape(-1).tolist():
            data = value if isinstance(value, bytes) else _text(value).encode()
            parts.append(len(data).to_bytes(4, "little") + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
