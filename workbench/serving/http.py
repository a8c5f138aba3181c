"""The model server's HTTP/1.1 layer: an asyncio protocol (uvloop's event loop in the server
process) whose requests are parsed by httptools (Node's llhttp parser), answered by
:meth:`ModelServer.respond <workbench.serving.app.ModelServer.respond>`, each answer
written in one write.

Why not an HTTP server package: measured here, one core, ``wrk`` on the other, POST of 12 kB,
an empty answer: granian 2.8 (Rust) does 28,000 to 36,000 requests/s whatever its interface
and loop (ASGI, RSGI; asyncio, uvloop, rloop), about 30 us a request spent handing each one
between its Rust threads and Python; this protocol on uvloop does 122,000 (8 us). For the
CNN of ``benchmarks/serving.py`` (concurrency 32) that took the server from 67% of the
in-process floor to 84% (90% with the batcher's callbacks). What is ours is the
connection's bookkeeping; parsing (request line, headers, chunked bodies, keep-alive) is
llhttp's.

Per connection:

- requests are answered in the order they came (HTTP/1.1 pipelining), one at a time; a
  connection with more than :data:`PIPELINED` answers waiting stops being read until they
  are written, and so does one whose client does not read its answers;
- a body over the server's ``max_body_bytes`` (declared or sent), a head over
  :data:`MAX_HEAD` bytes and a request llhttp cannot parse get their error (413, 431,
  400), then the connection is closed, once its client has read that (what follows on it
  cannot be trusted);
- ``Expect: 100-continue`` is answered before the body is read (curl sends it);
- an Upgrade is answered as plain HTTP, then the connection is closed;
- a connection idle for :data:`IDLE_S` is closed.

:func:`serve` runs until SIGTERM or SIGINT, then stops listening, answers every request it
has, closes its connections, and returns (at most ``grace_s`` later).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import httptools

from workbench.serving.app import Answer, ModelServer, error_answer

logger = logging.getLogger(__name__)

#: answers a connection may have waiting before it is no longer read
PIPELINED = 16
#: bytes of request line and headers at most
MAX_HEAD = 64 * 1024
#: seconds a connection may stay idle (HAProxy drops its idle ones after 5)
IDLE_S = 75.0
#: seconds a refused request's connection is kept to drop what its client still sends
LINGER_S = 2.0
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class _Refused(Exception):
    """A request answered with an error before it was whole; its connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "path")

    def __init__(
        self, method: str, path: str, headers: dict[bytes, bytes], body: bytes, keep_alive: bool
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class Connection(asyncio.Protocol):
    """One client connection (see the module doc)."""

    def __init__(self, server: ModelServer, hub: _Hub) -> None:
        self.server = server
        self.hub = hub
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[_Request] = deque()
        self.answering = False
        self.closing = False  # no further request is taken: close once the last is answered
        self.write_paused = False
        self.reading = True
        self.refusal: Answer | None = None
        self.current: _Request | None = None  # the request being answered
        self.lingering = False  # refused: our side is shut, what comes is dropped
        self.last_active = time.monotonic()
        self.head_read = 0
        self._new_message()

    def _new_message(self) -> None:
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.head_size = 0  # bytes of request line and headers, as parsed
        self.body_size = 0
        self.in_head = True

    # --- asyncio ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.hub.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.connections.discard(self)
        self.transport = None
        self.waiting.clear()
        self.current = None

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return
        self.last_active = time.monotonic()
        try:
            if self.in_head:  # what the earlier reads of this head brought was all head
                if self.head_read > MAX_HEAD:  # (a header cut over reads is kept until it ends)
                    raise _Refused(431, f"the request's headers are over {MAX_HEAD} bytes")
                self.head_read += len(data)
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.status, cause.message)
            else:
                self._refuse(400, f"the request could not be read: {cause or exc}")
        except httptools.HttpParserUpgrade:  # answered as plain HTTP; what follows is not
            self.shut()
        except httptools.HttpParserError as exc:
            self._refuse(400, f"not an HTTP/1.1 request this server can read: {exc}")
        except _Refused as exc:
            self._refuse(exc.status, exc.message)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    # --- httptools' callbacks -------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value
        self._count_head(len(name) + len(value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_read = 0
        declared = self.headers.get(b"content-length")
        limit = self.server.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refused(413, self.server.too_large(int(declared)))
        if self.headers.get(b"expect", b"").lower() == b"100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        if self.body_size > self.server.max_body_bytes:
            raise _Refused(413, self.server.too_large(self.body_size))
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        raw = self.url.partition(b"?")[0].decode("latin-1")
        request = _Request(
            self.parser.get_method().decode("ascii"),
            unquote(raw) if "%" in raw else raw,
            self.headers,
            body,
            self.parser.should_keep_alive() and not self.closing,
        )
        self._new_message()
        if self.closing:
            return
        if not request.keep_alive:
            self.closing = True
        self.waiting.append(request)
        if not self.answering:
            self._next()
        else:
            self._flow()

    # --- answering --------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self.head_size += size
        if self.head_size > MAX_HEAD:
            raise _Refused(431, f"the request's headers are over {MAX_HEAD} bytes")

    def _next(self) -> None:
        """Answers the next request waiting, if any; else closes the connection if it is to
        be closed."""
        if self.waiting and self.transport is not None:
            self.answering = True
            request = self.current = self.waiting.popleft()
            self._flow()
            try:
                self.server.respond(
                    request.method, request.path, request.headers.get, request.body, self._reply
                )
            except Exception as exc:  # a bug of ours: the client still gets an answer
                logger.exception("answering %s %s failed", request.method, request.path)
                self._reply(error_answer(500, f"the server failed: {type(exc).__name__}"))
            return
        self.answering = False
        if self.refusal is not None:
            self._write(*self.refusal, keep_alive=False)
            self._linger()
        elif self.closing and self.transport is not None:
            self.transport.close()

    def _linger(self) -> None:
        """Closes after a refusal so that its client reads it: our side is shut, what the
        client still sends (the rest of a body too large) is read and dropped, and the
        connection is closed when the client closes its side or :data:`LINGER_S` later.
        (Closed at once, the unread bytes would make the kernel reset the connection, and
        the client might never see why.)"""
        transport = self.transport
        if transport is None:
            return
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.lingering = True
        transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def _reply(self, answer: Answer) -> None:
        request = self.current
        if request is None or self.transport is None:
            return  # the connection is gone
        self.current = None
        last = self.closing and not self.waiting  # the connection closes after this answer
        self._write(*answer, request.keep_alive and not last, request.method == "HEAD")
        self._next()

    def _write(
        self, status: int, body: bytes, headers: bytes, keep_alive: bool, head_only: bool = False
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = b"HTTP/1.1 %d %s\r\n%scontent-length: %d\r\n%s%s\r\n" % (
            status,
            _REASONS.get(status, b""),
            headers,
            len(body),
            self.hub.date,
            b"" if keep_alive else b"connection: close\r\n",
        )
        self.transport.write(head if head_only else head + body)

    def _refuse(self, status: int, message: str) -> None:
        """Answers an error once the answers owed are written, then closes the connection:
        what follows on it cannot be read."""
        self.closing = True
        self.refusal = error_answer(status, message)
        self._flow()
        if not self.answering:
            self._next()

    def _flow(self) -> None:
        """Reads the connection, or not: not once it is to be closed, nor while its client does
        not read its answers or has too many waiting."""
        if self.transport is None or self.lingering:
            return
        wanted = not (self.closing or self.write_paused) and len(self.waiting) < PIPELINED
        if wanted != self.reading:
            self.reading = wanted
            if wanted:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def idle_for(self, now: float) -> float:
        """Seconds since its client last sent anything, when no answer is owed to it."""
        return 0.0 if self.answering or self.waiting else now - self.last_active

    def shut(self) -> None:
        """Takes no further request: closes now if idle, else once its answers are written."""
        self.closing = True
        self._flow()
        if not self.answering and not self.waiting and self.transport is not None:
            self.transport.close()


class _Hub:
    """The server's connections and the Date header every answer carries (once a second)."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.date = b""
        self.tick()

    def tick(self) -> None:
        self.date = b"date: %s\r\nserver: workbench\r\n" % formatdate(usegmt=True).encode()

    async def keep(self) -> None:
        """Once a second: the Date header, and the idle connections closed."""
        while True:
            await asyncio.sleep(1)
            self.tick()
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.idle_for(now) > IDLE_S:
                    connection.shut()


async def serve(
    server: ModelServer,
    host: str,
    port: int,
    *,
    started: asyncio.Future[int] | None = None,
    stop: asyncio.Event | None = None,
    grace_s: float = 8.0,
) -> None:
    """Serves ``server`` on ``host:port`` until ``stop`` is set (by default: until SIGTERM or
    SIGINT), then ends as the module doc says. ``started`` gets the port listened on
    (``port=0``: a free one)."""
    loop = asyncio.get_running_loop()
    hub = _Hub()
    signals = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
    listener = await loop.create_server(lambda: Connection(server, hub), host, port, backlog=2048)
    keeper = loop.create_task(hub.keep())
    if started is not None:
        started.set_result(listener.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        listener.close()
        for connection in list(hub.connections):
            connection.shut()
        deadline = loop.time() + grace_s
        while hub.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(hub.connections):
            if connection.transport is not None:
                connection.transport.abort()
        keeper.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
