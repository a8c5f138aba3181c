"""A service's metrics as the panel and ``workbench service metrics`` read them: the model
server's own ``/metrics`` text (its :class:`Metrics`, fed known observations) parsed per
replica, and the rates between two readings: requests and errors per second (inference
routes only, not the proxy's health checks), latency percentiles from the histogram's
increase, the mean batch size; a replica that started again counts from zero."""

from __future__ import annotations

import pytest

from workbench.deployments.metrics import parse, rates
from workbench.deployments.schemas import ServiceMetrics
from workbench.serving.metrics import Metrics


def observe(m: Metrics, *, route: str, code: int, seconds: float, n: int) -> None:
    for _ in range(n):
        m.answered(route, code, seconds)


def reading(at: float, *replicas: tuple[str, Metrics]) -> ServiceMetrics:
    return ServiceMetrics(
        service_id=1,
        at=at,
        replicas=[
            parse(m.exposition().decode(), index=i, run_id=run)
            for i, (run, m) in enumerate(replicas)
        ],
    )


def test_a_replica_page_is_read_without_the_health_checks() -> None:
    m = Metrics()
    observe(m, route="infer", code=200, seconds=0.003, n=40)
    observe(m, route="predict", code=400, seconds=0.0004, n=2)
    for _ in range(500):  # the proxy's checks are not traffic
        m.answered("health", 200)
    m.rejected = 3
    m.queue_depth = 7
    for rows in (1, 8, 8, 16):
        m.observe_batch(rows, 0.001, [0.0001] * rows)
    r = parse(m.exposition().decode(), index=0, run_id="abc")
    assert (r.requests, r.errors, r.rejected, r.queue_depth) == (42, 2, 3, 7)
    assert r.latency.count == 42
    assert r.latency.sum == pytest.approx(40 * 0.003 + 2 * 0.0004)
    assert r.latency.bounds[0] == 0.00025 and r.latency.counts[-1] == 42
    assert (r.batch_size.count, r.batch_size.sum) == (4, 33)


def test_rates_between_two_readings() -> None:
    a, b = Metrics(), Metrics()
    observe(a, route="infer", code=200, seconds=0.0015, n=10)
    before = reading(100.0, ("a", a), ("b", b))
    # in 2 s: 90 fast requests and 10 slow ones on a, 100 on b, one of them refused
    observe(a, route="infer", code=200, seconds=0.0015, n=90)
    observe(a, route="infer", code=200, seconds=0.3, n=10)
    observe(b, route="predict", code=200, seconds=0.0015, n=99)
    observe(b, route="predict", code=503, seconds=0.0001, n=1)
    for rows in (4, 4, 8):
        a.observe_batch(rows, 0.001, [])
    r = rates(before, reading(102.0, ("a", a), ("b", b)))
    assert r.seconds == 2.0 and r.replicas == 2
    assert r.request_rate == pytest.approx(100.0)  # 200 new requests in 2 s
    assert r.error_rate == pytest.approx(0.5)
    # 189 of 200 in the 1-2 ms bucket: the median is inside it, the p99 in 0.2-0.5 s
    assert r.p50_ms is not None and 1.0 < r.p50_ms < 2.0
    assert r.p99_ms is not None and 200.0 < r.p99_ms <= 500.0
    assert r.p95_ms is not None and r.p50_ms <= r.p95_ms <= r.p99_ms
    assert r.mean_batch == pytest.approx(16 / 3)


def test_a_replica_started_again_or_new_counts_from_zero() -> None:
    old = Metrics()
    observe(old, route="infer", code=200, seconds=0.001, n=1000)
    before = reading(10.0, ("r0", old))
    restarted, new = Metrics(), Metrics()  # r0's counters back at zero; r1 new
    observe(restarted, route="infer", code=200, seconds=0.001, n=30)
    observe(new, route="infer", code=200, seconds=0.001, n=20)
    r = rates(before, reading(11.0, ("r0", restarted), ("r1", new)))
    assert r.request_rate == pytest.approx(50.0)
    assert r.replicas == 2


def test_no_traffic_has_no_percentiles() -> None:
    m = Metrics()
    r = rates(reading(1.0, ("a", m)), reading(2.0, ("a", m)))
    assert (r.request_rate, r.p50_ms, r.p99_ms, r.mean_batch) == (0.0, None, None, None)
