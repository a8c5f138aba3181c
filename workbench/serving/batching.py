"""Adaptive micro-batching: requests that arrive together run as one batch.

One worker takes requests from a bounded queue and runs them on the model; whatever queued
meanwhile is the next batch (up to ``max_batch`` rows). A lone request never waits. Where
the process has more cores than the model's threads, the model runs in a thread of its own
so that the event loop reads requests while it computes; on fewer, it runs in the loop's
thread (a hand-off between threads on one core costs about 40 us a batch, measured here,
and buys nothing: the requests that arrive meanwhile wait in the socket and are the next
batch all the same).
When requests are queued, the worker may wait a little for more, but only while waiting
pays: the measured cost of a batch, ``t(n) = a * n + b`` (fitted over recent batches), says
that each request added to a batch saves ``b`` (the fixed cost it would pay in a batch of
its own), so it waits while the next request is expected (from the recent arrival rate)
within ``b``, and never past ``max_delay`` after the oldest request arrived. A full queue
(``max_queue`` requests waiting) refuses new ones at once with :class:`Overloaded` (503)
rather than letting latency grow without limit. When the model raises on a batch of
several requests, each of them runs again alone: the one it refused (a Python predictor's
bad input) fails, the others are answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from workbench.serving.metrics import Metrics

logger = logging.getLogger(__name__)
Tensors = dict[str, np.ndarray]
#: called with a request's outputs, or with why its batch failed
Done = Callable[["Tensors | None", "BaseException | None"], None]


class Overloaded(Exception):
    """The queue is full: the request is refused (503), not queued."""


@dataclass(slots=True)
class _Pending:
    inputs: Tensors
    rows: int
    arrived: float
    done: Done = field(repr=False)


class LatencyModel:
    """``t(n) = a * n + b`` fitted by exponentially weighted least squares over the batches
    measured (recent ones weigh most)."""

    def __init__(self, decay: float = 0.95) -> None:
        self.decay = decay
        self.sw = self.sn = self.st = self.snn = self.snt = 0.0

    def add(self, n: int, seconds: float) -> None:
        d = self.decay
        self.sw = self.sw * d + 1
        self.sn = self.sn * d + n
        self.st = self.st * d + seconds
        self.snn = self.snn * d + n * n
        self.snt = self.snt * d + n * seconds

    @property
    def fixed_cost(self) -> float:
        """``b``: what a batch costs whatever its size (0 until two sizes were seen)."""
        spread = self.sw * self.snn - self.sn * self.sn
        if self.sw < 2 or spread <= 1e-9:
            return 0.0
        slope = (self.sw * self.snt - self.sn * self.st) / spread
        return max(0.0, (self.st - slope * self.sn) / self.sw)


class Batcher:
    """Runs ``model`` (a batch in, a batch out: the batch axis first) on batches of the
    requests submitted (see the module doc)."""

    def __init__(
        self,
        model: Callable[[Tensors], Tensors],
        *,
        max_batch: int = 32,
        max_delay_s: float = 0.005,
        max_queue: int = 256,
        metrics: Metrics | None = None,
        offload: bool = False,
    ) -> None:
        """``offload``: run the model in a thread of its own (see the module doc)."""
        self.model = model
        self.offload = offload
        self.max_batch = max(1, max_batch)
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.metrics = metrics
        self.latency = LatencyModel()
        self._queue: deque[_Pending] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None  # what the idle worker waits on
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="workbench-model")
        self._gap = 1.0  # seconds between arrivals, smoothed
        self._last_arrival = 0.0

    def submit(self, inputs: Tensors, done: Done) -> None:
        """Queues these inputs (one request: one or more rows); ``done`` is called, in the
        event loop, with their outputs once their batch has run, or with its failure.
        Raises :class:`Overloaded` when the queue is full."""
        if self._loop is None:  # the worker runs in the loop that serves
            self._loop = asyncio.get_running_loop()
            self._worker = self._loop.create_task(self._work())
        if len(self._queue) >= self.max_queue:
            if self.metrics:
                self.metrics.rejected += 1
            raise Overloaded(
                f"the server is at capacity ({self.max_queue} requests queued); retry shortly"
            )
        now = time.perf_counter()
        if self._last_arrival:
            self._gap = 0.9 * self._gap + 0.1 * (now - self._last_arrival)
        self._last_arrival = now
        rows = next(iter(inputs.values())).shape[0] if inputs else 1
        self._queue.append(_Pending(inputs, rows, now, done))
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _arrival(self, within: float | None = None) -> bool:
        """Waits for a request to be queued (at most ``within`` seconds): whether one was."""
        assert self._loop is not None
        wake = self._wake = self._loop.create_future()
        timer = None if within is None else self._loop.call_later(within, _settle, wake)
        await wake
        if timer is not None:
            timer.cancel()
        return bool(self._queue)

    async def _work(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            while not queue:
                await self._arrival()
            batch = [queue.popleft()]
            rows = batch[0].rows
            while rows < self.max_batch:
                if not queue and not (
                    self._waiting_pays(batch[0].arrived) and await self._arrival(self._gap)
                ):
                    break
                if rows + queue[0].rows > self.max_batch:
                    break  # does not fit: it starts the next batch
                item = queue.popleft()
                batch.append(item)
                rows += item.rows
            started = time.perf_counter()
            try:
                outputs = await self._compute(loop, batch)
            except Exception as exc:  # the model raised: on which request, each alone says
                if len(batch) == 1:
                    _call(batch[0].done, None, exc)
                else:
                    for pending in batch:
                        await self._alone(loop, pending)
                continue
            took = time.perf_counter() - started
            self.latency.add(rows, took)
            if self.metrics:  # the depth is read as each batch ends
                self.metrics.observe_batch(rows, took, [started - p.arrived for p in batch])
                self.metrics.queue_depth = len(queue)
            if len(batch) == 1:
                _call(batch[0].done, outputs, None)
                continue
            at = 0
            for pending in batch:
                part = {k: v[at : at + pending.rows] for k, v in outputs.items()}
                at += pending.rows
                _call(pending.done, part, None)

    async def _compute(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> Tensors:
        if self.offload:
            return await loop.run_in_executor(self._executor, self._run, batch)
        return self._run(batch)

    async def _alone(self, loop: asyncio.AbstractEventLoop, pending: _Pending) -> None:
        """Runs one request of a batch that failed by itself, and hands it its outcome."""
        try:
            outputs = await self._compute(loop, [pending])
        except Exception as exc:
            _call(pending.done, None, exc)
        else:
            _call(pending.done, outputs, None)

    def _waiting_pays(self, oldest: float) -> bool:
        left = oldest + self.max_delay_s - time.perf_counter()
        return left > 0 and self._gap < min(left, self.latency.fixed_cost)

    def _run(self, batch: list[_Pending]) -> Tensors:
        if len(batch) == 1:
            return self.model(batch[0].inputs)
        names = batch[0].inputs.keys()
        joined = {n: np.concatenate([p.inputs[n] for p in batch]) for n in names}
        return self.model(joined)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _call(done: Done, outputs: Tensors | None, failure: BaseException | None) -> None:
    """Hands a request its outcome; what goes wrong there is that request's, not the batch's."""
    try:
        done(outputs, failure)
    except Exception:
        logger.exception("answering a request failed")
