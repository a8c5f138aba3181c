"""The model server's Prometheus metrics (``GET /metrics``): requests and errors by route
and status, request latency, batch sizes, queue depth, time in the queue, the model's time
per batch, and requests refused for a full queue.

They are counted in plain numbers by the event loop's thread (every request touches four of
them: about 0.3 us, against 1.5 us through ``prometheus_client``'s locked metric objects)
and handed to ``prometheus_client`` as a collector when scraped: it writes the exposition.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

#: request latency buckets, seconds (0.25 ms to 10 s)
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """Observations counted in buckets (upper bounds, inclusive) and summed."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: over every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip(
            (*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True
        ):
            total += count
            out.append((bound, total))
        return out


class Metrics:
    def __init__(self) -> None:
        #: requests answered, by (route, status code)
        self.requests: dict[tuple[str, str], int] = {}
        #: time from a request's body read to its answer, by route
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.inference = Histogram(LATENCY_BUCKETS)
        self.queue_time = Histogram(LATENCY_BUCKETS)
        self.queue_depth = 0
        self.rejected = 0
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def answered(self, route: str, code: int, seconds: float | None = None) -> None:
        """One request answered; ``seconds`` from its body read to its answer."""
        key = (route, str(code))
        self.requests[key] = self.requests.get(key, 0) + 1
        if seconds is not None:
            histogram = self.latency.get(route)
            if histogram is None:
                histogram = self.latency[route] = Histogram(LATENCY_BUCKETS)
            histogram.observe(seconds)

    def observe_batch(self, rows: int, seconds: float, waited: list[float]) -> None:
        self.batch_size.observe(rows)
        self.inference.observe(seconds)
        for w in waited:
            self.queue_time.observe(w)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector interface: the metrics as they are now."""
        requests = CounterMetricFamily(
            "workbench_requests", "Requests answered", labels=["route", "code"]
        )
        for (route, code), count in sorted(self.requests.items()):
            requests.add_metric([route, code], count)
        yield requests
        latency = HistogramMetricFamily(
            "workbench_request_seconds",
            "Time from a request's body read to its answer",
            labels=["route"],
        )
        for route, histogram in sorted(self.latency.items()):
            latency.add_metric([route], histogram.cumulative(), histogram.sum)
        yield latency
        for name, doc, histogram in (
            ("workbench_batch_size", "Rows per batch run", self.batch_size),
            ("workbench_inference_seconds", "The model's time per batch", self.inference),
            (
                "workbench_queue_seconds",
                "Time a request waited before its batch ran",
                self.queue_time,
            ),
        ):
            yield HistogramMetricFamily(
                name, doc, buckets=histogram.cumulative(), sum_value=histogram.sum
            )
        yield GaugeMetricFamily("workbench_queue_depth", "Requests waiting", value=self.queue_depth)
        yield CounterMetricFamily(
            "workbench_rejected", "Requests refused because the queue was full", value=self.rejected
        )
