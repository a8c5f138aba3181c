"""What a service's details show in the Services section: its summary (what it serves,
its address, who may call it), its endpoint's key shown once, its replicas and their logs,
and the live line and charts of its replicas' metrics (request rate, latency percentiles,
batch size and queue depth)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.deployments.schemas import ReplicaLog, ServiceInfo, ServiceRates
from workbench.widgets.charts import Chart
from workbench.widgets.common import escape, heading_html, state_html, table_html

#: the live charts' titles, and each one's lines: the reading's field, a name, a colour
LIVE_TITLES = ("Requests per second", "Latency (ms)", "Batch size and queue")
LIVE_LINES = (
    (("request_rate", "requests/s", "#1e88e5"), ("error_rate", "errors/s", "#e53935")),
    (("p50_ms", "p50", "#43a047"), ("p95_ms", "p95", "#fb8c00"), ("p99_ms", "p99", "#e53935")),
    (("mean_batch", "mean batch", "#8e24aa"), ("queue_depth", "queue depth", "#546e7a")),
)


def live_chart() -> Chart:
    """Three charts over time, one above the other: request rate, latency percentiles,
    batch size and queue depth."""
    figure = make_subplots(
        rows=len(LIVE_LINES),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=LIVE_TITLES,
    )
    figure.update_layout(
        autosize=True,
        height=640,
        margin={"l": 50, "r": 10, "t": 30, "b": 30},
        legend={"orientation": "h", "y": -0.08},
    )
    figure.update_yaxes(rangemode="tozero")
    figure.update_xaxes(tickformat="%H:%M:%S")
    # no toolbar: it would cover the first title, and zooming a chart that moves on is moot
    unread = "No readings yet: the charts start with the replicas' second reading."
    return Chart(figure, unread, {"displayModeBar": False})


def live_traces(points: Sequence[ServiceRates]) -> tuple[list[go.Scatter], list[int]]:
    """The live charts' lines over the readings ``points``, and the chart (the row) of
    each line."""
    xs = [datetime.fromtimestamp(p.at).isoformat(timespec="milliseconds") for p in points]
    traces, rows = [], []
    for row, lines in enumerate(LIVE_LINES, start=1):
        for column, name, colour in lines:
            y = [getattr(p, column) for p in points]
            style = {"color": colour}
            traces.append(go.Scatter(x=xs, y=y, name=name, mode="lines", line=style))
            rows.append(row)
    return traces, rows


def summary_html(s: ServiceInfo) -> str:
    lineage = ", ".join(
        f"{what} {value}"
        for what, value in (
            ("task", s.task_id),
            ("dataset", s.dataset_id),
            ("algorithm", s.algorithm_id),
        )
        if value is not None
    )
    options = s.options
    rows = [
        (
            "state",
            state_html(s.state)
            + (f" · {escape(s.message)}" if s.message not in ("", s.state) else ""),
        ),
        ("serves", _serves_html(s)),
        ("made by", escape(lineage or "no training task here (registered or imported)")),
        ("address", f"<code>http://{escape(s.address)}</code>" if s.address else "-"),
        (
            "callers",
            "<b>anyone</b>: its endpoint is public, on purpose (no key asked)"
            if s.public_endpoint
            else "those with its key (<code>Authorization: Bearer &lt;key&gt;</code>); "
            "New key gives one",
        ),
        ("through Jupyter", f"<code>/workbench/api/v1/{escape(s.relay)}</code>"),
        (
            "each replica",
            f"{s.cpus:g} CPU, {s.memory_mb} MiB · batches up to {options.max_batch}, "
            f"waits ≤ {options.max_delay_ms:g} ms, queue {options.max_queue}",
        ),
        ("owner", f"{escape(s.owner)} · {escape(s.visibility)}"),
    ]
    return heading_html(s.name) + table_html(["", ""], rows)


def key_html(s: ServiceInfo, key: str) -> str:
    """The endpoint's key, shown this once, with a call that sends it."""
    route = s.api_spec["route"] if s.api_spec is not None else "/predict"
    call = (
        f"curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f"-d @sample.json http://{s.address}{route}"
    )
    return (
        "<div><b>The endpoint's key</b>, shown this once (copy it now; <i>New key</i> "
        f"replaces it): <code class='wb-service-key-value'>{escape(key)}</code><br>"
        f"<small>For example:</small> <code>{escape(call)}</code></div>"
    )


def _serves_html(s: ServiceInfo) -> str:
    version = (
        f"{escape(s.model)} v{s.version} (version id {s.model_version_id})"
        if s.model_version_id is not None
        else ""
    )
    if s.api_spec is None:
        return f"{version} as <b>{escape(s.format)}</b> ({escape(s.runtime)} runtime)"
    api = f"{escape(s.api_spec['method'])} <code>{escape(s.api_spec['route'])}</code>"
    files = f", with {version}'s files" if version else ""
    return f"algorithm {s.algorithm_id}'s <b>inference image</b>{files}; its API: {api}"


def replicas_html(s: ServiceInfo) -> str:
    if not s.replica_states:
        return f"<i>No replica runs ({s.replicas} asked for when started).</i>"
    rows = [
        [
            f"r{r.index}",
            state_html(r.state),
            r.address or "-",
            r.run_id[:12],
        ]
        for r in s.replica_states
    ]
    return table_html(["replica", "state", "answers on", "container"], rows, "wb-replicas-table")


def now_html(r: ServiceRates) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    batch = "-" if r.mean_batch is None else f"{r.mean_batch:.1f}"
    return (
        f"<small>last {r.seconds:.1f} s: <b>{r.request_rate:.1f} req/s</b>, "
        f"{r.error_rate:.1f} errors/s, p50 {ms(r.p50_ms)} · p95 {ms(r.p95_ms)} · p99 "
        f"{ms(r.p99_ms)} ms, mean batch {batch}, queue {r.queue_depth:.0f}, "
        f"{r.replicas} replica{'s' if r.replicas != 1 else ''} read</small>"
    )


def logs_html(logs: list[ReplicaLog]) -> str:
    """The replicas' last log lines."""
    text = "\n".join(log.text for log in logs) or "(empty)"
    return (
        "<pre style='font-size:11px;line-height:1.3;max-height:260px;overflow:auto;"
        f"margin:2px 0'>{escape(text)}</pre>"
    )


def unread_html(error: str) -> str:
    """The live line when no replica's metrics could be read: why (the first error)."""
    return (
        "<small><i>Its replicas serve no Prometheus /metrics (an inference image with a "
        f"server of its own): {escape(error[:200])}</i></small>"
    )
