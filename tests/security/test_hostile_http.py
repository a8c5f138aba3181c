"""Hostile HTTP against the model server's HTTP layer (``workbench.serving.http``) on raw
sockets, in this process and as a real ``python -m workbench.serving`` process: slow heads,
slow bodies, huge trailers, connections past the cap, pipelined and concurrent big bodies
past the connection's and the process's budgets, and tensors whose shapes lie. Each case
names its attack, asserts the safe outcome, and that the server still answers a normal
request afterwards."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.serving.models import make_cnn, make_predictor
from tests.serving.test_http import closed, get, post, read_answer, sample, served
from tests.serving.test_server_process import start, wait_ready
from workbench.serving import http
from workbench.serving.app import ModelServer
from workbench.serving.runtimes import load

KIB = 1024
TEXTS = '''
import numpy as np


class Predictor:
    """The length of each text."""

    def __init__(self, model_dir):
        pass

    def predict(self, inputs):
        return {"length": np.array([len(t) for t in inputs["text"]], dtype=np.int64)}
'''


@pytest.fixture
def doubler(tmp_path: Path) -> ModelServer:
    """Doubles ``x`` (FP32 [N, 2]), 0.1 s a batch; bodies of 64 KiB at most."""
    model = make_predictor(tmp_path / "doubler", slow=0.1)
    return ModelServer(load(model, "python"), name="doubler", max_body_bytes=64 * KIB)


@pytest.fixture
def texts(tmp_path: Path) -> ModelServer:
    """``text`` (BYTES [N]) -> ``length``; bodies of 4 MiB at most."""
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "predictor.py").write_text(TEXTS)
    signature = {
        "inputs": [{"name": "text", "dtype": "string", "shape": [-1]}],
        "outputs": [{"name": "length", "dtype": "int64", "shape": [-1]}],
    }
    (folder / "signature.json").write_text(json.dumps(signature))
    return ModelServer(load(folder, "python"), name="texts", max_body_bytes=4 * 1024 * KIB)


def padded(x: float, size: int) -> bytes:
    """A /predict body of ``size`` bytes (JSON allows the trailing blanks)."""
    body = sample(x)
    return body + b" " * (size - len(body))


def infer(name: str, tensor: dict, binary: bytes = b"") -> bytes:
    header = json.dumps({"inputs": [tensor]}).encode()
    extra = [f"Inference-Header-Content-Length: {len(header)}"] if binary else []
    return post(f"/v2/models/{name}/infer", header + binary, *extra)


async def still_answers(port: int) -> None:
    """A normal client, on a new connection, gets its prediction."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/predict", sample(1.5)))
    assert (await read_answer(reader)).json()["y"] == [3.0, 2.0]
    writer.close()


async def drip(writer: asyncio.StreamWriter, every_s: float, byte: bytes = b"a") -> None:
    """Sends one byte every ``every_s`` until the server closes the connection."""
    try:
        while not writer.is_closing():
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(every_s)
    except (ConnectionError, OSError):
        pass


class Sampler:
    """Reads a figure every 5 ms while it runs; ``most`` is the largest seen."""

    def __init__(self, figure: Callable[[], int]) -> None:
        self.figure = figure
        self.most = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.most = max(self.most, self.figure())
            await asyncio.sleep(0.005)

    def stop(self) -> int:
        self.task.cancel()
        return self.most


async def test_slowloris_head_one_byte_at_a_time_gets_408(doubler):
    """Attack: slowloris, a head sent one byte every 0.2 s so that the connection is never
    idle and never whole. Safe: 408 once the head's deadline passes, the connection closed."""
    hub = http.Hub(doubler, http.Limits(head_s=0.5))
    async with served(doubler, hub) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: m\r\nX-Slow: ")
        dripping = asyncio.create_task(drip(writer, 0.2))
        refused = await read_answer(reader)
        assert refused.status == 408 and "head was not whole 0.5 s" in refused.json()["error"]
        assert refused.headers["connection"] == "close" and await closed(reader)
        dripping.cancel()
        await still_answers(port)


async def test_slow_body_under_the_minimum_rate_gets_408(doubler):
    """Attack: a body declared at 60 KiB and sent at 5 bytes/s, holding the connection and
    its reserved bytes. Safe: 408 once a window shows the rate under the minimum; the
    bytes it held are released."""
    hub = http.Hub(doubler, http.Limits(min_body_rate=100, body_window_s=0.5))
    async with served(doubler, hub) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post("/predict", padded(1.0, 60 * KIB))[:200])
        dripping = asyncio.create_task(drip(writer, 0.2, b" "))
        refused = await read_answer(reader)
        assert refused.status == 408
        assert "under this server's minimum of 100 bytes/s" in refused.json()["error"]
        assert await closed(reader) and hub.held == 0
        dripping.cancel()
        await still_answers(port)


async def test_many_trailers_after_a_chunked_body_get_431(doubler):
    """Attack: a chunked body followed by 40 trailer fields of 1 KiB (llhttp bounds no
    trailers). Safe: 431 at the trailer limit, the connection closed."""
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = sample(1.0)
        writer.write(b"POST /predict HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")
        trailers = b"".join(b"X-T-%d: %s\r\n" % (i, b"t" * KIB) for i in range(40))
        writer.write(b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailers))
        refused = await read_answer(reader)
        assert refused.status == 431
        assert refused.json()["error"] == "the request's trailers are over 8192 bytes"
        assert await closed(reader)
        await still_answers(port)


async def test_one_endless_trailer_sent_in_pieces_gets_431(doubler):
    """Attack: one trailer field that never ends, 1 KiB a write (httptools keeps a field
    until it ends, so no callback ever sees it). Safe: 431 once the bytes read after the
    last chunk pass the trailer limit, the connection closed."""
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = sample(1.0)
        writer.write(b"POST /predict HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n0\r\nX-Endless: " % (len(body), body))
        answer = asyncio.create_task(read_answer(reader))
        for _ in range(64):
            if answer.done():
                break
            writer.write(b"e" * KIB)
            await writer.drain()
            await asyncio.sleep(0.01)
        refused = await answer
        assert refused.status == 431 and "trailers are over" in refused.json()["error"]
        assert await closed(reader)
        await still_answers(port)


async def test_connections_past_the_cap_get_503_while_open_ones_are_served(doubler, caplog):
    """Attack: a flood of connections past the cap. Safe: each one past it gets 503 and is
    closed at once, counted and logged once a second; the connections already open keep
    being answered, and a new one is taken once a slot frees."""
    hub = http.Hub(doubler, http.Limits(max_connections=4))
    async with served(doubler, hub) as (port, _):
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        for _ in range(6):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            refused = await read_answer(reader)
            assert refused.status == 503 and "4 connections open" in refused.json()["error"]
            assert await closed(reader)
            writer.close()
        assert hub.turned_away == 6 and len(hub.connections) == 4
        for i, (reader, writer) in enumerate(kept):
            writer.write(post("/predict", sample(float(i))))
            assert (await read_answer(reader)).json()["y"] == [2.0 * i, 2.0]
        kept[0][1].close()
        for _ in range(200):
            if len(hub.connections) < 4:
                break
            await asyncio.sleep(0.01)
        await still_answers(port)
        for _ in range(300):  # the sweep logs what it refused
            if "refused 6 connections over the limit of 4" in caplog.text:
                break
            await asyncio.sleep(0.01)
        assert "refused 6 connections over the limit of 4" in caplog.text


async def test_pipelined_big_bodies_stay_within_the_connections_budget(tmp_path):
    """Attack: 12 pipelined requests of 1,000 KiB each in one write (on the code before,
    the connection read and buffered them all: 12 MB). Safe: the connection is not read
    while it holds more than its budget (one body of 1 MiB), so it never holds more than
    two bodies; every request is still answered, in order."""
    model = make_predictor(tmp_path / "doubler", slow=0.1)
    server = ModelServer(load(model, "python"), name="doubler", max_body_bytes=1024 * KIB)
    hub = http.Hub(server, http.Limits())
    async with served(server, hub) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        def queued() -> int:  # the bodies read whole and not answered yet
            return sum(
                len(request.body)
                for connection in hub.connections
                for request in (*connection.waiting, connection.current)
                if request is not None
            )

        bodies, accounted = Sampler(queued), Sampler(lambda: hub.held)
        body = 1000 * KIB
        writer.write(b"".join(post("/predict", padded(float(i), body)) for i in range(12)))
        answers = [await read_answer(reader) for _ in range(12)]
        assert [a.json()["y"][0] for a in answers] == [2.0 * i for i in range(12)]
        assert bodies.stop() <= 2 * body
        assert accounted.stop() <= hub.connection_budget + server.max_body_bytes
        assert hub.held == 0 and hub.shed == 0
        writer.close()
        await still_answers(port)


async def test_concurrent_big_bodies_past_the_process_budget_get_503(doubler):
    """Attack: eight connections each declaring a 60 KiB body and sending it slowly, past
    what all bodies may hold (three). Safe: the three admitted are read, the others get
    503 on their head and are closed; the bytes held never pass the budget; requests
    without a body are still answered meanwhile, and the admitted bodies are answered."""
    hub = http.Hub(doubler, http.Limits(process_body_bytes=3 * 64 * KIB))
    async with served(doubler, hub) as (port, _):
        held = Sampler(lambda: hub.held)
        requests = [post("/predict", padded(float(i), 60 * KIB)) for i in range(8)]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in requests]
        for (_, writer), request in zip(clients, requests, strict=True):
            writer.write(request[: 30 * KIB])  # half of each: the body is begun
            await writer.drain()
        for _ in range(200):
            if hub.shed == 5:
                break
            await asyncio.sleep(0.01)
        assert hub.shed == 5 and hub.held == 3 * 60 * KIB
        await still_answers(port)  # a bodiless request meanwhile: answered
        health_reader, health_writer = await asyncio.open_connection("127.0.0.1", port)
        health_writer.write(get("/v2/health/ready"))
        assert (await read_answer(health_reader)).json() == {"ready": True}
        answers = [asyncio.create_task(read_answer(reader)) for reader, _ in clients]
        for _ in range(500):  # the 503s came on the heads: read as soon as asked
            if sum(answer.done() for answer in answers) >= 5:
                break
            await asyncio.sleep(0.01)
        refused = [answer for answer in answers if answer.done()]
        assert len(refused) == 5
        for answer in refused:
            assert answer.result().status == 503
            assert "would pass its limit of 196608" in answer.result().json()["error"]
        answered = []
        for i, ((_, writer), request) in enumerate(zip(clients, requests, strict=True)):
            if answers[i] not in refused:
                writer.write(request[30 * KIB :])
                answered.append((await answers[i]).json()["y"][0] == 2.0 * i)
            writer.close()
        assert answered == [True, True, True]
        assert held.stop() <= hub.process_budget and hub.held == 0
        await still_answers(port)


@pytest.mark.parametrize(
    "tensor, binary, error",
    [
        (  # 2**41 elements: no array of that size is ever asked of NumPy
            {"name": "x", "shape": [2**40, 2], "datatype": "FP32", "data": [1.0, 2.0]},
            b"",
            "2199023255552 elements, over this server's limit of 65536",
        ),
        (
            {
                "name": "x",
                "shape": [2**40, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 8},
            },
            struct.pack("<2f", 1.0, 2.0),
            "2199023255552 elements, over this server's limit of 65536",
        ),
        (
            {"name": "x", "shape": [2**31, 2**31], "datatype": "FP32", "data": [1.0]},
            b"",
            "has shape [2147483648, 2147483648], the model takes [N, 2]",
        ),
        (  # within the limit, but not what the data hold: refused before NumPy reads them
            {"name": "x", "shape": [3, 2], "datatype": "FP32", "data": [[1.0, 2.0]]},
            b"",
            "has 2 values, its shape [3, 2] needs 6",
        ),
    ],
    ids=["json-huge", "binary-huge", "astronomic", "disagrees"],
)
async def test_hostile_shapes_are_refused_before_allocation(doubler, tensor, binary, error):
    """Attack: a tensor whose shape claims far more elements than its data hold (or than
    the server takes). Safe: 400 with what was wrong, before anything is allocated for
    the shape."""
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(infer("doubler", tensor, binary))
        refused = await read_answer(reader)
        assert refused.status == 400 and error in refused.json()["error"], refused.body
        writer.write(
            infer("doubler", {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]})
        )
        assert (await read_answer(reader)).json()["outputs"][0]["data"] == [2.0, 4.0]
        await still_answers(port)


async def test_a_tensor_over_the_configured_element_limit_is_refused(tmp_path):
    """Attack: a well-formed tensor of 120 elements against a server that takes 100 a
    tensor (on the code before, no limit: it was run). Safe: 400 naming the limit."""
    model = make_predictor(tmp_path / "doubler")
    server = ModelServer(load(model, "python"), name="doubler", max_elements=100)
    async with served(server) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        big = {"name": "x", "shape": [60, 2], "datatype": "FP32", "data": [1.0] * 120}
        writer.write(infer("doubler", big))
        refused = await read_answer(reader)
        assert refused.status == 400
        assert "120 elements, over this server's limit of 100" in refused.json()["error"]
        await still_answers(port)


async def test_many_tiny_bytes_elements_are_not_materialised(texts):
    """Attack: a BYTES tensor of shape [1] whose binary part holds 400,000 one-byte
    elements (2 MB; on the code before, all were made into Python objects, 5.3 MB more,
    before the count was compared). Safe: 400 after the second element; what is taken
    while refusing it is the body as read and joined (2x), little more."""
    async with served(texts) as (port, _):
        blob = b"\x01\x00\x00\x00a" * 400_000
        tensor = {"name": "text", "shape": [1], "datatype": "BYTES"}
        tensor["parameters"] = {"binary_data_size": len(blob)}
        request = infer("texts", tensor, blob)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        tracemalloc.start()
        try:
            writer.write(request)
            refused = await read_answer(reader)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert refused.status == 400
        assert "has more than 1 elements, its shape [1] needs 1" in refused.json()["error"]
        assert peak < 3 * len(blob), peak  # the body, read and joined; on the code before: 5x
        good = {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["ab", "c"]}
        writer.write(infer("texts", good))
        assert (await read_answer(reader)).json()["outputs"][0]["data"] == [2, 1]


async def test_bytes_data_nested_a_thousand_deep_do_not_crash_the_decoder(texts):
    """Attack: BYTES data nested 1,000 lists deep (as deep as the JSON parser goes; on the
    code before, flattening it recursed past Python's limit: 500). Safe: read without
    recursion, answered, and the server answers on."""
    async with served(texts) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        deep = "[" * 1000 + '"abc"' + "]" * 1000  # written out: json.dumps would recurse
        header = '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": %s}]}'
        writer.write(post("/v2/models/texts/infer", (header % deep).encode()))
        answer = await read_answer(reader)
        assert answer.status == 200 and answer.json()["outputs"][0]["data"] == [3]
        writer.write(get("/v2/health/live"))
        assert (await read_answer(reader)).json() == {"live": True}


# --- against a real server process ----------------------------------------------------------


@pytest.fixture
def process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``python -m workbench.serving`` serving the CNN with 8 connections at most and a
    head deadline of 1 s."""
    model = make_cnn(tmp_path / "cnn.onnx")
    server, port = start(
        model, "--runtime", "onnx", "--name", "cnn", "--max-connections", "8",
        "--head-timeout-s", "1",
    )  # fmt: skip
    try:
        wait_ready(server, port)
        yield server, port
    finally:
        server.kill()
        server.wait(10)


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Sends ``request``, reads one answer: its status and body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        read = sock.recv(65536)
        assert read, f"the server closed the connection without an answer: {data!r}"
        data += read
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def cnn_request(shape: list[int], values: int) -> bytes:
    tensor = {"name": "image", "shape": shape, "datatype": "FP32", "data": [0.5] * values}
    return infer("cnn", tensor)


def test_a_real_server_holds_a_slowloris_flood_past_its_cap(process):
    """Attack: against the real process (cap 8), seven slowloris heads take the free slots,
    then ten more connections come. Safe: the ten get 503 and are closed, a client already
    connected keeps getting predictions, the slowloris heads get 408 after the deadline,
    then new clients are served; the process logs what it refused, a line a second at
    most, not one per connection."""
    server, port = process
    with socket.create_connection(("127.0.0.1", port), timeout=10) as normal:
        assert exchange(normal, get("/v2/health/ready"))[0] == 200
        slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(7)]
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: m\r\nX-Slow: a")
        time.sleep(0.2)
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                status, body = exchange(extra, b"")
                assert status == 503 and b"8 connections open" in body
                assert extra.recv(100) == b""
        status, body = exchange(normal, cnn_request([1, 1, 8, 8], 64))
        assert status == 200 and json.loads(body)["outputs"][0]["shape"] == [1, 3]
        for sock in slow:
            status, body = exchange(sock, b"")
            assert status == 408 and b"head was not whole 1 s" in body
            sock.close()
    time.sleep(0.3)  # the slots free as the server sees the closes
    with socket.create_connection(("127.0.0.1", port), timeout=10) as fresh:
        assert exchange(fresh, get("/health"))[0] == 200
    server.terminate()
    output, _ = server.communicate(timeout=10)
    lines = [line for line in output.splitlines() if "connections over the limit of 8" in line]
    assert sum(int(line.split("refused ")[1].split()[0]) for line in lines) == 10, output
    assert len(lines) <= 3, output


def test_a_real_server_refuses_a_shape_of_2_to_the_62_elements(process):
    """Attack: against the real process, an image tensor claiming 2**62 rows. Safe: 400
    naming the limit, the process neither allocates nor dies, and answers on."""
    server, port = process
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        status, body = exchange(sock, cnn_request([2**62, 1, 8, 8], 64))
        assert status == 400 and b"over this server's limit" in body
        status, body = exchange(sock, cnn_request([2, 1, 8, 8], 128))
        assert status == 200 and json.loads(body)["outputs"][0]["shape"] == [2, 3]
    assert server.poll() is None
