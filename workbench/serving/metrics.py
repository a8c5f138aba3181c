"""The model server's Prometheus metrics (``GET /metrics``), in a registry of its own:
requests and errors by route and status, request latency, batch sizes, queue depth, time
in the queue, the model's time per batch, and requests refused for a full queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: request latency buckets, seconds (0.25 ms to 10 s)
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "workbench_requests", "Requests answered", ["route", "code"], registry=r
        )
        self.latency = Histogram(
            "workbench_request_seconds",
            "Time from a request's body read to its answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "workbench_batch_size", "Rows per batch run", buckets=BATCH_BUCKETS, registry=r
        )
        self.inference = Histogram(
            "workbench_inference_seconds",
            "The model's time per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "workbench_queue_seconds",
            "Time a request waited before its batch ran",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("workbench_queue_depth", "Requests waiting", registry=r)
        self.rejected = Counter(
            "workbench_rejected", "Requests refused because the queue was full", registry=r
        )

    def observe_batch(self, rows: int, seconds: float, waited: list[float]) -> None:
        self.batch_size.observe(rows)
        self.inference.observe(seconds)
        for w in waited:
            self.queue_time.observe(w)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
