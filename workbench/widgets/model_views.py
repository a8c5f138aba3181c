"""What a model's details show in the Models section, as HTML: its summary, its versions,
a version's lineage, inputs and formats, the best format per latency budget of its
benchmark, and two or more versions compared."""

from __future__ import annotations

from typing import Any

from workbench.models.schemas import (
    BenchmarkReport,
    ModelDetail,
    ModelVersionInfo,
    VersionComparison,
)
from workbench.widgets.common import escape, heading_html, size_text, state_html, table_html


def summary_html(m: ModelDetail) -> str:
    tags = ", ".join(f"{escape(k)}={escape(v)}" for k, v in m.tags.items()) or "none"
    aliases = ", ".join(f"{escape(a)} → v{n}" for a, n in m.aliases.items()) or "none"
    rows = [
        ("owner", escape(m.owner)),
        ("visibility", escape(m.visibility)),
        ("purpose", escape(m.purpose or "-")),
        ("tags", tags),
        ("aliases", aliases),
    ]
    return heading_html(m.name, m.description) + table_html(["", ""], rows)


def versions_html(m: ModelDetail) -> str:
    rows = []
    for v in reversed(m.versions):
        accuracy = v.evaluation.accuracy if v.evaluation else None
        formats = " ".join(f"{escape(f.format)}:{state_html(f.state)}" for f in v.formats) or "-"
        rows.append(
            [
                f"v{v.version}",
                escape(v.framework or "-"),
                f"{accuracy:.3f}" if accuracy is not None else "-",
                formats,
                escape(v.default_format or "-"),
                escape(", ".join(v.aliases) or "-"),
                f"task {v.task_id}" if v.task_id else "-",
            ]
        )
    headers = ["version", "framework", "accuracy", "formats", "default", "aliases", "lineage"]
    return table_html(headers, rows, "wb-model-versions-table")


def version_html(v: ModelVersionInfo) -> str:
    signature = (
        "; ".join(
            f"{escape(t['name'])} {escape(t['dtype'])} {t['shape']}"
            for t in v.signature.get("inputs", [])
        )
        or "none (conversion needs one)"
    )
    rows = [
        ("lineage", escape(_lineage(v))),
        ("files", f"{v.files} ({size_text(v.size)})"),
        ("inputs", signature),
        ("parameters", escape(", ".join(f"{k}={x}" for k, x in v.parameters.items()) or "-")),
    ]
    return table_html(["", ""], rows)


def _lineage(v: ModelVersionInfo) -> str:
    """What made the version, the parts it has: "task 3, algorithm 1, dataset 2"."""
    parts = (
        ("task", v.task_id),
        ("algorithm", v.algorithm_id),
        ("dataset", v.dataset_id),
        ("environment", v.environment_id),
        ("base version", v.base_version_id),
    )
    made = ", ".join(f"{name} {value}" for name, value in parts if value is not None)
    if v.source.get("import"):
        imported = f"imported {v.source['import']} file {v.source.get('file', '?')}"
        warned = "".join(f"; ⚠ {w}" for w in v.source.get("warnings", []))
        made = ", ".join(part for part in (imported + warned, made) if part)
    return made or "-"


def formats_html(v: ModelVersionInfo, read_only: bool) -> str:
    if not v.formats:
        if read_only:
            return "<i>Not converted yet.</i>"
        return "<i>Not converted yet: Convert makes its deployment formats, each checked.</i>"
    rows = [
        [
            escape(f.format),
            state_html(f.state),
            escape(f.message.splitlines()[0] if f.message else ""),
            size_text(f.size) if f.size else "-",
        ]
        for f in v.formats
    ]
    return table_html(["format", "state", "check", "size"], rows, "wb-model-formats-table")


def best_html(report: BenchmarkReport) -> str:
    if not report.best:
        return ""
    rows, last = [], None
    for b in report.best:  # a budget whose choice is the smaller budget's adds nothing
        if (b.format, b.batch_size) == last:
            continue
        last = (b.format, b.batch_size)
        rows.append(
            [
                f"≤ {b.budget_ms:g} ms",
                escape(b.format),
                str(b.batch_size),
                f"{b.p99_ms:.3f}",
                f"{b.throughput:,.0f}",
            ]
        )
    hardware = report.hardware
    head = (
        f"<b>Best format per p99 budget</b> (and every larger budget) · default format "
        f"<b>{escape(report.default_format or '-')}</b><br><small>measured on "
        f"{escape(str(hardware.get('cpu', '?')))}, {hardware.get('cpus_given', '?')} CPU, "
        f"{escape(', '.join(f'{k} {v}' for k, v in report.software.items()))}</small>"
    )
    return head + table_html(
        ["p99 budget", "format", "batch", "p99 ms", "samples/s"], rows, "wb-model-best-table"
    )


def comparison_html(t: VersionComparison) -> str:
    heads = [f"{escape(m)} v{v.version}" for m, v in zip(t.models, t.versions, strict=True)]

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else escape(str(value))

    rows = []
    for name, values in t.parameters.items():
        mark = " *" if name in t.differing else ""
        rows.append([f"{escape(name)}{mark}", *map(cell, values)])
    for name, values in t.metrics.items():
        rows.append([f"<b>{escape(name)}</b>", *map(cell, values)])
    for name, values in t.formats.items():
        rows.append([escape(name), *(state_html(v) if v else "-" for v in values)])
    for name, values in t.latency_ms.items():
        rows.append([f"{escape(name)} p50 ms (batch 1)", *map(cell, values)])
    for name, values in t.throughput.items():
        rows.append([f"{escape(name)} best samples/s", *map(cell, values)])
    return table_html(["", *heads], rows, "wb-model-comparison-table")
