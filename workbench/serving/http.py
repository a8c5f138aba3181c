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
  :data:`MAX_HEAD` bytes, trailers over :attr:`Limits.max_trailers` and a request llhttp
  cannot parse get their error (413, 431, 431, 400), then the connection is closed, once
  its client has read that (what follows on it cannot be trusted);
- ``Expect: 100-continue`` is answered before the body is read (curl sends it);
- an Upgrade is answered as plain HTTP, then the connection is closed;
- a connection idle for :data:`IDLE_S` is closed.

Against hostile clients (llhttp bounds neither time nor trailers; :class:`Limits` holds the
figures): a head must be whole within ``head_s`` of its first byte, and a body must bring
``min_body_rate`` bytes/s over each ``body_window_s``, else 408; trailers are counted and
never taken for headers; past ``max_connections`` a new connection gets 503 and is closed
(those open are served on). Body bytes read and not yet answered are counted: a
connection holding over ``connection_body_bytes`` (pipelined bodies) is not read until its
answers release them (what the read in hand brought is still parsed: one read, 256 KiB at
most), and a body that would take the process over ``process_body_bytes`` (counted at its
declared length, before it is read) gets 503, so memory stays bounded whatever the
clients send. It is all counted in the callbacks and checked once a second by the sweep
that closes idle connections: no task, timer or clock read per request.

:func:`serve` runs until SIGTERM or SIGINT, then stops listening, answers every request it
has, closes its connections, and returns (at most ``grace_s`` later).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Limits:
    """What clients may make the server wait for and hold (see the module doc)."""

    #: seconds from a request's first byte until its head (request line, headers) is whole
    head_s: float = 10.0
    #: bytes/s a body must bring, measured over each window of ``body_window_s`` seconds
    min_body_rate: int = 1024
    body_window_s: float = 10.0
    #: bytes of trailers (the header fields after a chunked body) at most
    max_trailers: int = 8 * 1024
    #: connections open at once at most
    max_connections: int = 1024
    #: body bytes one connection may hold, read and not yet answered (None: the server's
    #: ``max_body_bytes``, one body)
    connection_body_bytes: int | None = None
    #: body bytes all connections together may hold (None: 4 x ``max_body_bytes``)
    process_body_bytes: int | None = None


class _Refused(Exception):
    """A request answered with an error before it was whole; its connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True, eq=False)
class _Request:
    method: str
    path: str
    headers: dict[bytes, bytes]
    body: bytes
    keep_alive: bool


class Connection(asyncio.Protocol):
    """One client connection (see the module doc)."""

    def __init__(self, server: ModelServer, hub: Hub) -> None:
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
        self.head_started: float | None = None  # when the head being read began
        self.held = 0  # body bytes read (or declared) and not yet answered
        self.in_trailers = False  # after a chunk's size line, until its data come
        self.trailer_read = 0
        self.trailer_size = 0
        self._new_message()

    def _new_message(self) -> None:
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.head_size = 0  # bytes of request line and headers, as parsed
        self.body_size = 0
        self.reserved = 0  # of ``held``: this message's body, declared or read so far
        self.in_head = True
        self.body_since: float | None = None  # the body's rate window began then,
        self.body_mark = 0  # when it had this many bytes

    # --- asyncio ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        hub = self.hub
        if len(hub.connections) >= hub.limits.max_connections:
            hub.turned_away += 1
            self.refusal = hub.full  # what it sends is not read
            self._write(*hub.full, keep_alive=False)
            self.transport.close()
            return
        hub.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.connections.discard(self)
        self.hub.held -= self.held
        self.held = 0
        self.transport = None
        self.waiting.clear()
        self.current = None
        self.chunks = []

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return
        self.last_active = time.monotonic()
        try:
            if self.in_head:  # what the earlier reads of this head brought was all head
                if self.head_read > MAX_HEAD:  # (a header cut over reads is kept until it ends)
                    raise _Refused(431, f"the request's headers are over {MAX_HEAD} bytes")
                self.head_read += len(data)
            elif self.in_trailers:  # the same for the trailers
                if self.trailer_read > self.hub.limits.max_trailers:
                    raise _Refused(431, self.hub.trailers_over)
                self.trailer_read += len(data)
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

    def on_message_begin(self) -> None:
        self.head_started = self.last_active

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:
            self.headers[name.lower()] = value
            self._count_head(len(name) + len(value))
            return
        # a trailer (after a chunked body): counted, and never taken for a header
        self.trailer_size += len(name) + len(value)
        if self.trailer_size > self.hub.limits.max_trailers:
            raise _Refused(431, self.hub.trailers_over)

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.in_trailers = False
        self.head_read = 0
        self.head_started = None
        self.body_since = self.last_active
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and declared != b"0":
            size = int(declared)
            if size > self.server.max_body_bytes:
                raise _Refused(413, self.server.too_large(size))
            self._reserve(size)
        if self.headers.get(b"expect", b"").lower() == b"100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_chunk_header(self) -> None:
        """A chunk's size line was read: trailers follow if it was the last one (size 0);
        :meth:`on_body`, called for any other, says it was not."""
        self.in_trailers = True
        self.trailer_read = 0
        self.trailer_size = 0

    def on_body(self, chunk: bytes) -> None:
        self.in_trailers = False
        size = self.body_size = self.body_size + len(chunk)
        if size > self.reserved:  # a chunked body: counted as it comes
            if size > self.server.max_body_bytes:
                raise _Refused(413, self.server.too_large(size))
            self._reserve(size - self.reserved)
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
            self._release(len(body))
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

    def _reserve(self, size: int) -> None:
        """Counts ``size`` more bytes of the body being read as held. Over the process's
        budget the request is refused (503); over the connection's, the connection is not
        read further until the answers it is owed release theirs."""
        hub = self.hub
        if hub.held + size > hub.process_budget:
            hub.shed += 1
            raise _Refused(
                503,
                f"the server holds {hub.held} bytes of request bodies; {size} more would pass "
                f"its limit of {hub.process_budget}; retry shortly",
            )
        hub.held += size
        self.held += size
        self.reserved += size
        if self.held > hub.connection_budget:
            self._flow()

    def _release(self, size: int) -> None:
        """``size`` body bytes are no longer held (their request was answered or dropped)."""
        self.held -= size
        self.hub.held -= size
        if not self.reading:
            self._flow()

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
        if request.body:
            self._release(len(request.body))
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
        what follows on it cannot be read. The request being read is dropped."""
        self.closing = True
        self.refusal = error_answer(status, message)
        self.chunks = []
        self.head_started = self.body_since = None
        if self.reserved:
            self._release(self.reserved)
            self.reserved = 0
        self._flow()
        if not self.answering:
            self._next()

    def _flow(self) -> None:
        """Reads the connection, or not: not once it is to be closed, nor while its client does
        not read its answers, has too many waiting, or holds more body bytes than its budget
        while answers it is owed will release some. While it is not read, its clocks (the
        head's deadline, the body's rate) stop."""
        if self.transport is None or self.lingering:
            return
        wanted = (
            not (self.closing or self.write_paused)
            and len(self.waiting) < PIPELINED
            and (self.held <= self.hub.connection_budget or not (self.answering or self.waiting))
        )
        if wanted != self.reading:
            self.reading = wanted
            if wanted:
                self.transport.resume_reading()
                now = time.monotonic()
                if self.head_started is not None:
                    self.head_started = now
                if self.body_since is not None:
                    self.body_since, self.body_mark = now, self.body_size
            else:
                self.transport.pause_reading()

    def idle_for(self, now: float) -> float:
        """Seconds since its client last sent anything, when no answer is owed to it."""
        return 0.0 if self.answering or self.waiting else now - self.last_active

    def overdue(self, now: float) -> None:
        """Refuses (408) a head not whole :attr:`Limits.head_s` after its first byte, and a
        body that brought less than :attr:`Limits.min_body_rate` bytes/s over its last
        window; not while the server itself does not read the connection."""
        if self.refusal is not None or not self.reading:
            return
        limits = self.hub.limits
        if self.head_started is not None:
            if now - self.head_started > limits.head_s:
                self._refuse(
                    408,
                    f"the request's head was not whole {limits.head_s:g} s after its first "
                    "byte; send it at once",
                )
        elif self.body_since is not None:
            elapsed = now - self.body_since
            if elapsed >= limits.body_window_s:
                brought = self.body_size - self.body_mark
                if brought < limits.min_body_rate * elapsed:
                    self._refuse(
                        408,
                        f"the body came at {brought / elapsed:.0f} bytes/s over {elapsed:.0f} "
                        f"s, under this server's minimum of {limits.min_body_rate} bytes/s",
                    )
                else:
                    self.body_since, self.body_mark = now, self.body_size

    def shut(self) -> None:
        """Takes no further request: closes now if idle, else once its answers are written."""
        self.closing = True
        self._flow()
        if not self.answering and not self.waiting and self.transport is not None:
            self.transport.close()


class Hub:
    """The server's connections, the body bytes they hold (read or declared, not yet
    answered), what was refused for the limits, and the Date header every answer carries
    (once a second)."""

    def __init__(self, server: ModelServer, limits: Limits) -> None:
        """``limits``' budgets default from ``server.max_body_bytes``; each must take at
        least one body of that size."""
        self.limits = limits
        most = server.max_body_bytes
        self.connection_budget = (
            most if limits.connection_body_bytes is None else limits.connection_body_bytes
        )
        self.process_budget = (
            4 * most if limits.process_body_bytes is None else limits.process_body_bytes
        )
        for name, budget in (
            ("connection_body_bytes", self.connection_budget),
            ("process_body_bytes", self.process_budget),
        ):
            if budget < most:
                raise ValueError(
                    f"{name} is {budget}, under the largest body the server takes "
                    f"({most} bytes): such a body could never be read; raise it"
                )
        self.connections: set[Connection] = set()
        self.held = 0
        self.turned_away = 0  # connections refused over max_connections
        self.shed = 0  # bodies refused over the process's budget
        self._reported = (0, 0)
        self.full = error_answer(
            503,
            f"the server has {limits.max_connections} connections open, its limit; retry shortly",
        )
        self.trailers_over = f"the request's trailers are over {limits.max_trailers} bytes"
        self.date = b""
        self.tick()

    def tick(self) -> None:
        self.date = b"date: %s\r\nserver: workbench\r\n" % formatdate(usegmt=True).encode()

    def report(self) -> None:
        """Logs what was refused for the limits since the last report (at most once a
        sweep: a flood of connections makes one line a second, not one a connection)."""
        counts = (self.turned_away, self.shed)
        if counts != self._reported:
            logger.warning(
                "refused %d connections over the limit of %d and %d bodies over the %d bytes "
                "all requests' bodies may hold (in the last second)",
                counts[0] - self._reported[0],
                self.limits.max_connections,
                counts[1] - self._reported[1],
                self.process_budget,
            )
            self._reported = counts

    async def keep(self) -> None:
        """Once a second: the Date header; idle connections closed, overdue heads and slow
        bodies refused; what was refused logged."""
        while True:
            await asyncio.sleep(1)
            self.tick()
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.idle_for(now) > IDLE_S:
                    connection.shut()
                else:
                    connection.overdue(now)
            self.report()


async def serve(
    server: ModelServer,
    host: str,
    port: int,
    *,
    hub: Hub | None = None,
    started: asyncio.Future[int] | None = None,
    stop: asyncio.Event | None = None,
    grace_s: float = 8.0,
) -> None:
    """Serves ``server`` on ``host:port`` until ``stop`` is set (by default: until SIGTERM or
    SIGINT), then ends as the module doc says. ``hub`` keeps the connections within its
    limits (default: ``Hub(server, Limits())``); ``started`` gets the port listened on
    (``port=0``: a free one)."""
    loop = asyncio.get_running_loop()
    if hub is None:
        hub = Hub(server, Limits())
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
