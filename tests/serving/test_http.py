"""The model server's HTTP/1.1 layer (``workbench.serving.http``) on raw sockets: keep-alive
and pipelined requests answered in order, ``Connection: close`` and HTTP/1.0, HEAD, chunked
bodies, ``Expect: 100-continue``, what it refuses (a request it cannot parse, a head or a
body over its limit) and that it closes then, idle connections closed, and a stop that
answers the requests it has before it ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.serving.models import make_predictor
from workbench.serving import http
from workbench.serving.app import ModelServer
from workbench.serving.runtimes import load


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, *, head_only: bool = False) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return Answer(int(status_line.split()[1]), headers, body)


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (nothing more comes)."""
    return await asyncio.wait_for(reader.read(), 10) == b""


def post(path: str, body: bytes, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: m", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    return (
        "\r\n".join([f"{method} {path} HTTP/{version}", "Host: m", *extra]) + "\r\n\r\n"
    ).encode()


def sample(x: float) -> bytes:
    return json.dumps({"x": [x, 1.0]}).encode()


@pytest.fixture
def doubler(tmp_path: Path) -> ModelServer:
    """Doubles ``x``, 0.1 s a batch; bodies of 200 bytes at most."""
    model = make_predictor(tmp_path / "doubler", slow=0.1)
    return ModelServer(load(model, "python"), name="doubler", max_body_bytes=200)


@contextlib.asynccontextmanager
async def served(
    server: ModelServer, hub: http.Hub | None = None
) -> AsyncIterator[tuple[int, asyncio.Event]]:
    """``server`` on a free port of this loop (its connections kept by ``hub``): the port,
    and the event that stops it."""
    loop = asyncio.get_running_loop()
    started: asyncio.Future[int] = loop.create_future()
    stop = asyncio.Event()
    serving = loop.create_task(
        http.serve(server, "127.0.0.1", 0, hub=hub, started=started, stop=stop)
    )
    try:
        yield await started, stop
    finally:
        stop.set()
        await serving
        server.close()


async def test_keep_alive_pipelined_requests_are_answered_in_order(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # three requests in one write: a slow one first, then one answered at once
        writer.write(
            post("/predict", sample(1.0))
            + get("/v2/health/live")
            + post("/predict", sample(3.0), "Content-Type: application/json")
        )
        answers = [await read_answer(reader) for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 200]
        assert answers[0].json()["y"] == [2.0, 2.0]
        assert answers[1].json() == {"live": True}
        assert answers[2].json()["y"] == [6.0, 2.0]
        assert answers[0].headers["content-type"] == "application/json"
        assert "date" in answers[0].headers and "connection" not in answers[0].headers
        # the connection is still open: a query string is no part of the route
        writer.write(get("/v2/health/ready?probe=1"))
        assert (await read_answer(reader)).json() == {"ready": True}
        writer.close()


async def test_connection_close_http_1_0_and_head(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/v2/health/live", method="HEAD") + get("/health", "Connection: close"))
        head = await read_answer(reader, head_only=True)
        assert head.status == 200 and head.headers["content-length"] == "13"
        last = await read_answer(reader)
        assert last.json() == {"status": "ok"} and last.headers["connection"] == "close"
        assert await closed(reader)

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/health", version="1.0"))
        assert (await read_answer(reader)).json() == {"status": "ok"}
        assert await closed(reader)


async def test_chunked_bodies_and_expect_100_continue(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = sample(4.0)
        half = len(body) // 2
        chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            half,
            body[:half],
            len(body) - half,
            body[half:],
        )
        writer.write(b"POST /predict HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(chunks)
        assert (await read_answer(reader)).json()["y"] == [8.0, 2.0]

        # the client waits for 100 Continue before it sends the body
        head, _, body = post("/predict", sample(5.0), "Expect: 100-continue").partition(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await read_answer(reader)).json()["y"] == [10.0, 2.0]
        writer.close()


@pytest.mark.parametrize(
    "request_bytes, status, error",
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "not an HTTP/1.1 request this server can read"),
        (
            post("/predict", b"x" * 201),
            413,
            "the body is 201 bytes, over this server's limit of 200",
        ),
        (  # refused on its Content-Length, though the client sends it all
            post("/predict", b"x" * 4_000_000),
            413,
            "the body is 4000000 bytes, over this server's limit of 200",
        ),
        (
            b"POST /predict HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"96\r\n"
            + b"x" * 150
            + b"\r\n"
            + b"96\r\n"
            + b"x" * 150
            + b"\r\n",
            413,
            "the body is 300 bytes, over this server's limit of 200",
        ),
        (
            get("/health", *(f"X-Filler-{i}: {'y' * 1000}" for i in range(70))),
            431,
            "headers are over",
        ),
    ],
    ids=[
        "unparsable",
        "declared-too-large",
        "sent-too-large",
        "chunked-too-large",
        "head-too-large",
    ],
)
async def test_what_cannot_be_read_is_refused_and_the_connection_closed(
    doubler, request_bytes, status, error
):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # an answer owed before the bad request is still given, first
        writer.write(get("/v2/health/live") + request_bytes)
        assert (await read_answer(reader)).json() == {"live": True}
        refused = await read_answer(reader)
        assert refused.status == status and error in refused.json()["error"], refused.body
        assert refused.headers["connection"] == "close"
        assert await closed(reader)


async def test_an_upgrade_is_answered_as_plain_http_then_the_connection_closed(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/health", "Upgrade: websocket", "Connection: Upgrade") + b"\x81\x05hello")
        answer = await read_answer(reader)
        assert answer.json() == {"status": "ok"} and await closed(reader)


async def test_a_header_sent_a_byte_at_a_time_past_the_limit_is_refused(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nX-Long: ")
        for _ in range(20):  # one header of 80 kB, never ended, in 4 kB writes
            writer.write(b"z" * 4096)
            await writer.drain()
            await asyncio.sleep(0.01)
        refused = await read_answer(reader)
        assert refused.status == 431 and await closed(reader)


async def test_an_idle_connection_is_closed(doubler, monkeypatch):
    monkeypatch.setattr(http, "IDLE_S", 0.3)
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/health"))
        assert (await read_answer(reader)).status == 200
        assert await closed(reader)  # within the next sweep (a second)


async def test_a_stop_answers_the_requests_it_has_then_closes(doubler):
    async with served(doubler) as (port, stop):
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(get("/health"))
        assert (await read_answer(idle_reader)).status == 200
        busy_writer.write(post("/predict", sample(7.0)))
        for _ in range(200):  # until the server has the request (its batch takes 0.1 s)
            if doubler.batcher._last_arrival:
                break
            await asyncio.sleep(0.005)
        stop.set()
        assert await closed(idle_reader)
        answer = await read_answer(busy_reader)
        assert answer.json()["y"] == [14.0, 2.0] and answer.headers["connection"] == "close"
        assert await closed(busy_reader)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_trailers_are_read_but_never_taken_for_headers(doubler):
    async with served(doubler) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = sample(6.0)
        writer.write(b"POST /predict HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")
        # a trailer that would change how the body is read, were it merged into the headers
        writer.write(
            b"%x\r\n%s\r\n0\r\nContent-Type: text/plain\r\nX-Sum: 1\r\n\r\n" % (len(body), body)
        )
        answer = await read_answer(reader)
        assert answer.json()["y"] == [12.0, 2.0]
        writer.write(get("/health"))
        assert (await read_answer(reader)).status == 200
        writer.close()


async def test_a_body_sent_in_pieces_at_a_fair_rate_is_answered(doubler):
    hub = http.Hub(doubler, http.Limits(min_body_rate=100, body_window_s=0.5))
    async with served(doubler, hub) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = post("/predict", sample(2.0) + b" " * 150)
        for at in range(0, len(request), 60):  # about 200 bytes/s
            writer.write(request[at : at + 60])
            await writer.drain()
            await asyncio.sleep(0.3)
        assert (await read_answer(reader)).json()["y"] == [4.0, 2.0]
        assert hub.held == 0  # the body is released once answered
        writer.close()


def test_a_budget_that_could_not_take_one_body_is_refused(doubler):
    with pytest.raises(ValueError, match="connection_body_bytes is 100, under the largest"):
        http.Hub(doubler, http.Limits(connection_body_bytes=100))
    with pytest.raises(ValueError, match="process_body_bytes is 199"):
        http.Hub(doubler, http.Limits(process_body_bytes=199))
    doubler.close()
