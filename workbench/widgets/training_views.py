"""What a training task's details show: its summary, its run's log tail, the metric
charts (small multiples over one x axis), its evaluation with the confusion matrix, and
the model version it made."""

from __future__ import annotations

import math
from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.enums import TaskState
from workbench.models.evaluation import Evaluation
from workbench.models.schemas import ModelVersionInfo
from workbench.training.schemas import TaskInfo
from workbench.widgets.charts import Chart, chart
from workbench.widgets.common import escape, heading_html, plain, size_text, state_html, table_html


def task_summary_html(task: TaskInfo) -> str:
    params = ", ".join(f"{k}={plain(v)}" for k, v in task.parameters.items()) or "defaults"
    split = "its own test set" if task.train_ratio is None else f"train ratio {task.train_ratio:g}"
    transfer = (
        f" · from model version #{task.base_model_version_id}" if task.base_model_version_id else ""
    )
    times = []
    if task.started_at:
        times.append(f"started {task.started_at:%Y-%m-%d %H:%M:%S}")
    if task.finished_at:
        times.append(f"finished {task.finished_at:%Y-%m-%d %H:%M:%S}")
    reason = (
        f"<div style='color:{'#b71c1c' if task.state == TaskState.FAILED else '#555'}'>"
        f"{escape(task.state_reason)}</div>"
        if task.state_reason
        else ""
    )
    return (
        f"{heading_html(task.name, task.description)}"
        f"<div>state {state_html(task.state)} · {task.purpose}/{task.sub_purpose} · "
        f"{task.visibility} · owner {escape(task.owner)}</div>"
        f"<div>algorithm #{task.algorithm_id} {escape(task.algorithm_name)} · dataset "
        f"#{task.dataset_id} {escape(task.dataset_name)} ({split}){transfer}</div>"
        f"<div>parameters <code>{escape(params)}</code> · {task.cpus:g} CPUs, "
        f"{task.memory_mb} MiB, {task.gpus} GPUs</div>"
        f"<div style='color:var(--jp-ui-font-color2, #555)'>{' · '.join(times)}</div>{reason}"
    )


def evaluation_html(evaluation: Evaluation) -> str:
    """Accuracy and the macro averages, one row per class, then the container's numbers."""

    def num(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    parts = ["<div style='margin-top:6px'><b>Evaluation</b> (on the test set)</div>"]
    if evaluation.accuracy is not None:
        parts.append(
            table_html(
                ["accuracy", "precision (macro)", "recall (macro)", "F1 (macro)"],
                [
                    [
                        num(evaluation.accuracy),
                        num(evaluation.precision),
                        num(evaluation.recall),
                        num(evaluation.f1),
                    ]
                ],
                "wb-eval-overall",
            )
        )
    if evaluation.per_class:
        parts.append(
            table_html(
                ["class", "precision", "recall", "F1", "support"],
                [
                    [escape(label), num(c.precision), num(c.recall), num(c.f1), str(c.support)]
                    for label, c in evaluation.per_class.items()
                ],
                "wb-eval-classes",
            )
        )
    if evaluation.metrics:
        numbers = " · ".join(
            f"{escape(k)} {escape(plain(v))}" for k, v in evaluation.metrics.items()
        )
        parts.append(f"<div>{numbers}</div>")
    return "".join(parts)


def model_html(model_name: str, version: ModelVersionInfo) -> str:
    return (
        f"<div><b>Model</b> {escape(model_name)} v{version.version} (id {version.id}) · "
        f"{version.files} files, "
        f"{size_text(version.size)}</div>"
    )


def metrics_chart() -> Chart:
    return Chart(
        metrics_figure({}, "epoch", "Metrics"),
        "No metrics yet: they appear as the run writes them (metrics.jsonl).",
    )


def metric_groups(points: dict[str, tuple[list[float], list[float]]]) -> list[list[str]]:
    """The metrics that share an axis: the losses; the rates (every value within 0..1,
    accuracies say); then each other metric (a count of samples, say) on its own."""
    losses = [name for name in points if "loss" in name.lower()]
    rates = [
        name for name in points if name not in losses and all(0 <= y <= 1 for y in points[name][1])
    ]
    others = [[name] for name in points if name not in losses and name not in rates]
    return [group for group in (losses, rates) if group] + others


def metrics_figure(
    points: dict[str, tuple[list[float], list[float]]], x_title: str, title: str
) -> go.Figure:
    """Small multiples: a chart per :func:`metric_groups` group, over one x axis."""
    groups = metric_groups(points) or [[]]
    rows = len(groups)
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.3 / rows,
        subplot_titles=[", ".join(group) for group in groups],
    )
    for row, group in enumerate(groups, start=1):
        for name in group:
            xs, ys = points[name]
            figure.add_scatter(
                x=list(xs), y=list(ys), name=name, mode="lines+markers", row=row, col=1
            )
    figure.update_xaxes(title_text=x_title, row=rows, col=1)
    last = max((max(xs, default=1) for xs, _ in points.values()), default=1)
    figure.update_xaxes(tick0=0, dtick=max(1, math.ceil(last / 8)))  # whole epochs
    figure.update_layout(
        title=title,
        autosize=True,
        height=90 + 170 * rows,
        margin={"l": 50, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.35 / rows, "yanchor": "top"},
    )
    return figure


def confusion_chart() -> Chart:
    return chart(
        [go.Heatmap(z=[], x=[], y=[], colorscale="Blues", texttemplate="%{z}")],
        empty="No confusion matrix: the run's evaluation has none.",
        title="Confusion matrix",
        height=420,
        margin={"l": 60, "r": 10, "t": 40, "b": 50},
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )


def log_html(lines: Iterable[str]) -> str:
    """The log's tail, the newest line at the bottom."""
    text = escape("\n".join(lines)) or "(no output yet)"
    return (
        "<pre style='margin:0;padding:4px 6px;font-size:11px;line-height:1.35;"
        "white-space:pre-wrap;word-break:break-all;"
        f"background:var(--jp-layout-color2, #f5f5f5)'>{text}</pre>"
    )
