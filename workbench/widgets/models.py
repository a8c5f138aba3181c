"""The Models section of the side panel (manual 2.4): the registry with filters, a model's
versions with their lineage, evaluation, formats and aliases; import a model trained
elsewhere (a job, followed); convert and benchmark a version (jobs, followed with a
progress bar); the benchmark's charts (latency percentiles and throughput against batch
size, one line per format) and the best format per latency budget; two or more versions
compared side by side (evaluation and benchmark). The details' HTML is in
:mod:`~workbench.widgets.model_views`; the reviewers' read-only page, which shows this
section without its actions, in :mod:`~workbench.widgets.models_dashboard`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import ipywidgets as w
import plotly.graph_objects as go

from workbench.client import WorkbenchClient
from workbench.jobs.states import FINISHED_JOB_STATES
from workbench.models.formats import IMPORT_KINDS
from workbench.models.schemas import BenchmarkReport, ModelDetail, ModelInfo, ModelVersionInfo
from workbench.widgets import common
from workbench.widgets.charts import Chart, chart
from workbench.widgets.model_views import (
    best_html,
    comparison_html,
    formats_html,
    summary_html,
    version_html,
    versions_html,
)
from workbench.widgets.poller import Poller
from workbench.widgets.section import Section

FRAMEWORKS = ["pytorch", "sklearn", "onnx", "tensorflow"]
#: the reviewers' dashboard, relative to the panel's page ({base_url}workbench/panel)
DASHBOARD_LINK = "dashboard/models"
#: batch sizes on a log axis, labelled as they are
BATCH_AXIS = {"type": "log", "title": "batch size", "tickvals": [1 << i for i in range(11)]}
#: milliseconds on a log axis, a label per power of ten
LATENCY_AXIS = {"type": "log", "title": "ms (log scale)", "dtick": 1}
#: each percentile's line, the same for every format
PERCENTILES = (("p50", "solid"), ("p95", "dot"), ("p99", "dash"))
#: the charts' size, margins and legend (below the plot: the panel is narrow)
CHART_LAYOUT: dict[str, Any] = {
    "height": 380,
    "margin": {"l": 55, "r": 10, "t": 60, "b": 40},
    "legend": {"orientation": "h", "y": -0.2},
}
#: one colour per format, the same in every chart
COLOURS = {
    "native": "#546e7a",
    "onnx": "#1e88e5",
    "onnx-optimized": "#43a047",
    "onnx-int8": "#fb8c00",
    "tensorrt": "#8e24aa",
    "savedmodel": "#e53935",
}


class ModelsSection(Section[ModelInfo]):
    area = "models"
    empty_hint = "A training task makes one; or import a model trained elsewhere, below."
    deletes = ", its versions and their files"
    refresh_on_open = True  # training tasks add models

    def __init__(self, client: WorkbenchClient, *, read_only: bool = False, **kwargs: Any) -> None:
        """``read_only``: no delete, convert or benchmark (the reviewers' dashboard)."""
        self.read_only = read_only
        super().__init__(client, **kwargs)

    # --- the parts ------------------------------------------------------------------------

    def build_filters(self) -> list[w.Widget]:
        self.framework = common.filter_choice("Framework", FRAMEWORKS, "190px")
        return self.owned_filters(self.framework)

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        """Import a model trained elsewhere, followed by :attr:`import_poller`."""
        self.import_poller = self.follow(Poller(self._follow_import, self.poll_interval))
        self._import_job: int | None = None
        import_form = self._build_import_form()
        return [] if self.read_only else [("Import a model trained elsewhere", import_form)]

    def build_details(self) -> w.VBox:
        """The model, its versions, the chosen version with its actions (its job followed
        by :attr:`poller`), formats and benchmark, and the comparison of versions."""
        self.detail: ModelDetail | None = None
        self.poller = self.follow(Poller(self._follow, self.poll_interval))
        self._job_id: int | None = None
        self.summary = w.HTML()
        self.versions = w.HTML()
        self.versions.add_class("wb-model-versions")
        actions = self._build_version_actions()
        #: the reviewers' dashboard, opened on the model and version shown (_show_version)
        self.dashboard_link = w.HTML()
        if self.read_only:
            for widget in (*actions, self.delete_button, self.progress, self.dashboard_link):
                widget.layout.display = "none"
        return w.VBox(
            [
                self.summary,
                w.HBox([self.delete_button, self.dashboard_link], layout=common.wrap()),
                self.versions,
                w.HTML("<b>A version</b>"),
                w.HBox([self.version, *actions], layout=common.wrap()),
                w.HBox([self.progress, self.job_status], layout=common.wrap()),
                self.version_info,
                self.formats,
                *self._build_charts(),
                *self._build_compare(),
            ]
        )

    def _build_version_actions(self) -> list[w.Widget]:
        """The version chosen, what it shows, and its actions (returned): Convert,
        Benchmark and its largest batch size, followed by a progress bar."""
        self.version = w.Dropdown(description="Version", layout=w.Layout(width="220px"))
        self.version.add_class("wb-model-version")
        self.version.observe(lambda _: self._show_version(), names="value")
        self.version_info = w.HTML()
        self.convert_button = w.Button(description="Convert", icon="exchange")
        self.benchmark_button = w.Button(description="Benchmark", icon="tachometer")
        self.convert_button.add_class("wb-model-convert")
        self.benchmark_button.add_class("wb-model-benchmark")
        self.max_batch = w.Dropdown(
            options=[4, 8, 16, 32, 64, 128],
            value=32,
            description="Up to batch",
            layout=w.Layout(width="160px"),
        )
        self.convert_button.on_click(lambda _: self._start("convert"))
        self.benchmark_button.on_click(lambda _: self._start("benchmark"))
        self.progress = w.FloatProgress(
            value=0, min=0, max=1, description="Job", layout=w.Layout(width="300px", display="none")
        )
        self.job_status = common.Status()
        self.formats = w.HTML()
        self.formats.add_class("wb-model-formats")
        return [self.convert_button, self.benchmark_button, self.max_batch]

    def _build_charts(self) -> list[w.Widget]:
        """The benchmark's latency and throughput charts, and the best format per latency
        budget below them."""
        unmeasured = (
            "Not benchmarked yet."
            if self.read_only
            else "Not benchmarked yet: click Benchmark to measure this version's formats."
        )
        self.latency = chart(
            empty=unmeasured,
            title={
                "text": "Latency by batch size",
                "subtitle": {"text": " · ".join(f"{p} {d}" for p, d in PERCENTILES)},
            },
            xaxis=BATCH_AXIS,
            yaxis=LATENCY_AXIS,
            **CHART_LAYOUT,
        )
        self.throughput = chart(
            empty=unmeasured,
            title="Throughput (samples/s) by batch size",
            xaxis=BATCH_AXIS,
            yaxis={"title": "samples/s", "rangemode": "tozero"},
            **CHART_LAYOUT,
        )
        self.charts = w.VBox(
            [self.latency, self.throughput], layout=w.Layout(width="100%", overflow="auto hidden")
        )
        self.charts.add_class("wb-model-charts")
        self.best = w.HTML()
        self.best.add_class("wb-model-best")
        return [self.charts, self.best]

    def _build_compare(self) -> list[w.Widget]:
        """The versions to compare, Compare with its status, the table and its charts."""
        self.compare_pick = w.SelectMultiple(rows=4, layout=w.Layout(width="220px"))
        self.compare_pick.add_class("wb-model-compare-pick")
        self.compare_button = common.button(
            "Compare", "model-compare", self.compare, icon="columns"
        )
        #: what Compare answers, beside it
        self.compare_status = common.Status(css="model-compare-status")
        self.comparison = w.HTML()
        self.comparison.add_class("wb-model-comparison")
        compared = "Choose two or more versions, then Compare."
        bars: dict[str, Any] = {
            "barmode": "group",
            "height": 300,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
            "legend": {"orientation": "h", "y": -0.15},
        }
        self.compare_chart = chart(empty=compared, **bars)
        self.compare_rates = chart(empty=compared, **bars)
        self.compare_box = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.compare_box.add_class("wb-model-compare-chart")
        return [
            w.HTML("<b>Compare versions</b> (choose two or more)"),
            w.HBox(
                [self.compare_pick, self.compare_button, self.compare_status], layout=common.wrap()
            ),
            self.comparison,
            self.compare_box,
        ]

    def _build_import_form(self) -> w.VBox:
        """Import a model trained elsewhere: a file or archive the kernel can read."""
        self.import_path = w.Text(
            description="File",
            placeholder="model.onnx, net.zip... (relative to the notebook)",
            layout=w.Layout(width="330px"),
        )
        self.import_kind = w.Dropdown(
            options=[(f"{kind}: {what}", kind) for kind, (what, _, _) in IMPORT_KINDS.items()],
            description="Kind",
            layout=w.Layout(width="330px"),
        )
        self.import_name = w.Text(description="Model", placeholder="yours, or a new name")
        self.import_entry = w.Text(description="Entry", placeholder="pytorch: module:Class")
        self.import_signature = w.Textarea(
            description="Signature",
            placeholder='torchscript, pytorch: {"inputs": [{"name": "input", "dtype": '
            '"float32", "shape": [-1, 3, 32, 32]}]}',
            layout=w.Layout(width="330px", height="64px"),
        )
        self.import_button = common.button(
            "Import", "model-import", self.start_import, icon="upload", button_style="primary"
        )
        self.import_status = common.Status()
        return w.VBox(
            [
                self.import_path,
                self.import_kind,
                self.import_name,
                self.import_entry,
                self.import_signature,
                self.import_button,
                self.import_status,
            ]
        )

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[ModelInfo]:
        return self.client.models.list(
            framework=common.chosen(self.framework), **self.owned_filter_values()
        )

    def label(self, model: ModelInfo) -> str:
        latest = f"v{model.latest_version.version}" if model.latest_version else "no version"
        return f"#{model.id} {model.name} · {latest} · {model.visibility} · {model.owner}"

    def render(self, model: ModelInfo) -> None:
        detail = self.attempt(lambda: self.client.models.get(model.id))
        if detail is common.FAILED:
            return
        self.detail = detail
        self.summary.value = summary_html(detail)
        self.versions.value = versions_html(detail)
        newest = list(reversed(detail.versions))
        options = [(f"v{v.version} (id {v.id})", v.id) for v in newest]
        keep = self.version.value if self.version.value in [v for _, v in options] else None
        # else the newest version with results (converted or benchmarked), else the newest
        results = next((v.id for v in newest if _has_results(v)), None)
        self.version.options = options
        self.version.value = keep or results or (options[0][1] if options else None)
        self.compare_pick.options = options
        self._show_version()

    # --- import ---------------------------------------------------------------------------

    def start_import(self) -> None:
        """Upload the file and follow its check; the new version is shown when it is in."""
        signature = None
        if self.import_signature.value.strip():
            try:
                signature = json.loads(self.import_signature.value)
            except ValueError as exc:
                self.import_status.problem(f"The signature is not JSON: {exc}")
                return
        path, kind = self.import_path.value.strip(), self.import_kind.value
        if not path:
            self.import_status.problem("Give the model's file (or an archive of its folder).")
            return
        if not Path(path).expanduser().is_file():
            self.import_status.problem(
                f"There is no file {path} (a path relative to the notebook's folder, or absolute)."
            )
            return
        started = common.attempt(
            self.import_status,
            lambda: self.client.models.start_import(
                Path(path).expanduser(),
                kind,
                name=self.import_name.value.strip() or None,
                signature=signature,
                entry=self.import_entry.value.strip(),
            ),
        )
        if started is common.FAILED:
            return
        self._import_job = started.job_id
        self.import_status.value = f"import job {started.job_id} queued: checking the file…"
        self.import_poller.start()

    def _follow_import(self) -> bool:
        job_id = self._import_job
        if job_id is None:
            return False
        job = common.attempt(self.import_status, lambda: self.client.jobs.get(job_id))
        if job is common.FAILED:
            return False
        if job.state not in FINISHED_JOB_STATES:
            self.import_status.value = f"import job {job_id} {job.state}…"
            return True
        if job.state != "succeeded":
            self.import_status.problem(f"import job {job_id} {job.state}: {job.message}")
            return False
        warnings = "".join(f"; ⚠ {x}" for x in job.result.get("warnings", []))
        self.import_status.ok(
            f"imported as {job.result['model']} v{job.result['version']}{warnings}"
        )
        self.refresh()
        self.listing.value = job.result["model_id"]
        return False

    # --- a version: formats, benchmark charts, jobs ---------------------------------------

    def _chosen_version(self) -> ModelVersionInfo | None:
        if self.detail is None:
            return None
        return next((v for v in self.detail.versions if v.id == self.version.value), None)

    def _show_version(self) -> None:
        version = self._chosen_version()
        if version is None:
            self.version_info.value = self.formats.value = self.best.value = ""
            return
        self.version_info.value = version_html(version)
        self.formats.value = formats_html(version, self.read_only)
        query = urlencode({"model": version.model_id, "version": version.id})
        self.dashboard_link.value = (
            f"<a href='{DASHBOARD_LINK}?{query}' target='_blank'>Open the reviewers' dashboard "
            "↗</a> <small>(read-only, on this version: a stable URL to share)</small>"
        )
        report = self.attempt(lambda: self.client.models.benchmarks(version.id))
        if report is not common.FAILED:
            self._draw(report)

    def _draw(self, report: BenchmarkReport) -> None:
        by_format: dict[str, list[Any]] = {}
        for point in report.points:
            by_format.setdefault(point.format, []).append(point)
        latency, throughput = [], []
        for fmt, points in sorted(by_format.items()):
            xs = [p.batch_size for p in points]
            colour = COLOURS.get(fmt, "#333")
            for name, dash in PERCENTILES:
                # one legend entry per format; the subtitle says which line is which
                latency.append(
                    go.Scatter(
                        x=xs,
                        y=[getattr(p, f"{name}_ms") for p in points],
                        name=fmt,
                        showlegend=name == "p50",
                        hovertemplate=f"{fmt} {name}: %{{y:.3g}} ms at batch %{{x}}<extra></extra>",
                        mode="lines+markers",
                        line={"color": colour, "dash": dash},
                        legendgroup=fmt,
                    )
                )
            throughput.append(
                go.Scatter(
                    x=xs,
                    y=[p.throughput for p in points],
                    name=fmt,
                    mode="lines+markers",
                    line={"color": colour},
                )
            )
        _redraw(self.latency, latency, "Latency by batch size")
        _redraw(self.throughput, throughput, "Throughput (samples/s) by batch size")
        self.best.value = best_html(report)

    def _start(self, what: str) -> None:
        version = self._chosen_version()
        if version is None:
            return
        if what == "convert":
            started = self.attempt(lambda: self.client.models.convert(version.id, wait=False))
        else:
            started = self.attempt(
                lambda: self.client.models.benchmark(
                    version.id, wait=False, max_batch=self.max_batch.value
                )
            )
        if started is common.FAILED:
            return
        self._job_id = started.job_id
        self.progress.layout.display = ""
        self.progress.value, self.progress.bar_style = 0, "info"
        self.job_status.value = f"{what} job {self._job_id} queued…"
        self.poller.start()

    def _follow(self) -> bool:
        """One look at the job: its state, progress and message; the version again when it
        is over."""
        job_id = self._job_id
        if job_id is None:
            return False
        job = self.attempt(lambda: self.client.jobs.get(job_id))
        if job is common.FAILED:
            return False
        self.progress.value = job.progress
        if job.state not in FINISHED_JOB_STATES:
            # what the job says (a queued one: what it waits for), never a library's stderr
            doing = f": {job.message}" if job.message else f" · {job.progress:.0%}"
            self.job_status.value = common.escape(f"{job.kind} job {job_id} {job.state}{doing}")
            return True
        # the version as the job left it first (formats, charts), then the bar says so
        if self.selected is not None:
            self.render(self.selected)
        self.progress.value = 1
        if job.state == "succeeded":
            self.progress.bar_style = "success"
            self.job_status.ok(f"job {job_id} succeeded: {job.message}")
        else:
            self.progress.bar_style = "danger"
            self.job_status.problem(f"job {job_id} {job.state}: {job.message}")
        return False

    # --- compare --------------------------------------------------------------------------

    def compare(self) -> None:
        ids = list(self.compare_pick.value)
        if len(ids) < 2:
            self.compare_status.problem("Choose two or more versions to compare.")
            return
        table = common.attempt(self.compare_status, lambda: self.client.models.compare(*ids))
        if table is common.FAILED:
            return
        self.compare_status.ok(f"{len(ids)} versions compared")
        self.comparison.value = comparison_html(table)
        heads = [f"{m} v{v.version}" for m, v in zip(table.models, table.versions, strict=True)]
        _redraw(self.compare_chart, _bars(heads, table.metrics), "Evaluation")
        _redraw(self.compare_rates, _bars(heads, table.throughput), "Best samples/s by format")
        self.compare_box.children = (w.VBox([self.compare_chart, self.compare_rates]),)


def _redraw(chart: Chart, traces: list[Any], title: str) -> None:
    with chart.drawing() as figure:
        figure.data = []
        if traces:
            figure.add_traces(traces)
        figure.layout.title.text = title


def _bars(heads: list[str], rows: dict[str, list[Any]]) -> list[go.Bar]:
    """One bar series per compared version over the rows' names."""
    return [
        go.Bar(name=head, x=list(rows), y=[values[i] for values in rows.values()])
        for i, head in enumerate(heads)
    ]


def _has_results(v: ModelVersionInfo) -> bool:
    """Whether ``v`` was converted or benchmarked."""
    return bool(v.default_format or any(f.state == "verified" for f in v.formats))
