"""A service's metrics: each replica's ``/metrics`` (Prometheus text) read into
:class:`ReplicaMetrics`, and what happened between two readings (:func:`rates`): requests
and errors per second, latency percentiles and the mean batch size, computed from the
counters' and histograms' increase as Prometheus's ``rate`` and ``histogram_quantile``
do. A replica that started again (its counters back at zero) or is new counts from zero.

:func:`parse` runs in the server; :func:`rates` also in the CLI, installed with the client
alone (no prometheus_client), so the parser is imported where it is used.
"""

from __future__ import annotations

import math

from workbench.deployments.schemas import (
    Histogram,
    ReplicaMetrics,
    ServiceMetrics,
    ServiceRates,
)

#: the model server's routes that run the model (the rest: health checks, metadata)
INFERENCE_ROUTES = frozenset({"infer", "predict"})


def parse(text: str, *, index: int, run_id: str) -> ReplicaMetrics:
    """One replica's ``/metrics`` page (see :mod:`workbench.serving.metrics`)."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = errors = rejected = queue_depth = 0.0
    latency: dict[float, float] = {}
    batch: dict[float, float] = {}
    sums = {"latency": 0.0, "batch": 0.0}
    counts = {"latency": 0.0, "batch": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "workbench_requests_total":
                if labels.get("route") in INFERENCE_ROUTES:
                    requests += value
                    errors += value if labels.get("code") != "200" else 0.0
            elif sample.name == "workbench_rejected_total":
                rejected = value
            elif sample.name == "workbench_queue_depth":
                queue_depth = value
            elif sample.name.startswith("workbench_request_seconds"):
                if labels.get("route") in INFERENCE_ROUTES:
                    _add(sample.name, labels, value, latency, sums, counts, "latency")
            elif sample.name.startswith("workbench_batch_size"):
                _add(sample.name, labels, value, batch, sums, counts, "batch")
    return ReplicaMetrics(
        index=index,
        run_id=run_id,
        requests=requests,
        errors=errors,
        rejected=rejected,
        queue_depth=queue_depth,
        latency=_histogram(latency, sums["latency"], counts["latency"]),
        batch_size=_histogram(batch, sums["batch"], counts["batch"]),
    )


def _add(
    name: str,
    labels: dict[str, str],
    value: float,
    buckets: dict[float, float],
    sums: dict[str, float],
    counts: dict[str, float],
    key: str,
) -> None:
    """One sample of a histogram family (routes summed)."""
    if name.endswith("_bucket"):
        bound = float(labels["le"])
        if math.isfinite(bound):
            buckets[bound] = buckets.get(bound, 0.0) + value
    elif name.endswith("_sum"):
        sums[key] += value
    elif name.endswith("_count"):
        counts[key] += value


def _histogram(buckets: dict[float, float], total: float, count: float) -> Histogram:
    bounds = sorted(buckets)
    return Histogram(bounds=bounds, counts=[buckets[b] for b in bounds], sum=total, count=count)


def rates(before: ServiceMetrics, after: ServiceMetrics) -> ServiceRates:
    """What the service did between two readings, over all its replicas."""
    seconds = max(after.at - before.at, 1e-9)
    earlier = {r.run_id: r for r in before.replicas if not r.error}
    requests = errors = 0.0
    latency: Histogram | None = None
    batch: Histogram | None = None
    for now in after.replicas:
        if now.error:
            continue
        then = earlier.get(now.run_id)
        if then is not None and now.requests >= then.requests:
            requests += now.requests - then.requests
            errors += now.errors - then.errors
            lat, bat = _minus(now.latency, then.latency), _minus(now.batch_size, then.batch_size)
        else:  # new, or started again: everything it counted is new
            requests += now.requests
            errors += now.errors
            lat, bat = now.latency, now.batch_size
        latency = lat if latency is None else _plus(latency, lat)
        batch = bat if batch is None else _plus(batch, bat)
    return ServiceRates(
        at=after.at,
        seconds=seconds,
        request_rate=requests / seconds,
        error_rate=errors / seconds,
        p50_ms=_quantile(latency, 0.50, 1000.0),
        p95_ms=_quantile(latency, 0.95, 1000.0),
        p99_ms=_quantile(latency, 0.99, 1000.0),
        mean_batch=batch.sum / batch.count if batch is not None and batch.count > 0 else None,
        queue_depth=sum(r.queue_depth for r in after.replicas if not r.error),
        replicas=sum(1 for r in after.replicas if not r.error),
    )


def _minus(a: Histogram, b: Histogram) -> Histogram:
    if a.bounds != b.bounds or not b.bounds:
        return a
    return Histogram(
        bounds=a.bounds,
        counts=[x - y for x, y in zip(a.counts, b.counts, strict=True)],
        sum=a.sum - b.sum,
        count=a.count - b.count,
    )


def _plus(a: Histogram, b: Histogram) -> Histogram:
    if a.bounds != b.bounds:
        return a if a.count >= b.count else b
    return Histogram(
        bounds=a.bounds,
        counts=[x + y for x, y in zip(a.counts, b.counts, strict=True)],
        sum=a.sum + b.sum,
        count=a.count + b.count,
    )


def _quantile(h: Histogram | None, q: float, scale: float) -> float | None:
    """The ``q`` quantile of the observations in ``h``, interpolated linearly in its bucket
    (beyond the last bound: that bound), times ``scale``; None without observations."""
    if h is None or h.count <= 0:
        return None
    rank = q * h.count
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(h.bounds, h.counts, strict=True):
        if cumulative >= rank:
            inside = cumulative - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return (lower + (bound - lower) * share) * scale
        lower, below = bound, cumulative
    return lower * scale
