"""The Datasets section of the side panel: list with filters, details with a class
histogram and sample previews, create, upload with a progress bar, publish, visibility."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from workbench.client import WorkbenchClient
from workbench.datasets.schemas import DatasetInfo
from workbench.datasets.types import FORMATS_FOR, ValidationReport
from workbench.enums import SUB_PURPOSES, Purpose, SplitMode, SubPurpose, Visibility
from workbench.errors import WorkbenchError
from workbench.widgets.common import CONFIRM_DELETE, WRAP, Status, confirmed, escape

ALL = "all"
PREVIEW_SAMPLES = 8
CHART_WIDTH = 420


def _label(ds: DatasetInfo) -> str:
    return (
        f"#{ds.id} {ds.name} · {ds.purpose}/{ds.sub_purpose} · {ds.state} · "
        f"{ds.visibility} · {ds.owner}"
    )


class DatasetsSection(w.VBox):
    def __init__(self, client: WorkbenchClient, *, is_admin: bool = False, **kwargs: Any) -> None:
        self.client = client
        visibilities = visibility_choices(is_admin)
        self.datasets: dict[int, DatasetInfo] = {}
        self.status = Status()

        # list and filters
        self.purpose = w.Dropdown(
            options=[ALL, *Purpose],
            value=ALL,
            description="Purpose",
            layout=w.Layout(width="170px"),
        )
        self.state = w.Dropdown(
            options=[ALL, "draft", "online", "offline"],
            value=ALL,
            description="State",
            layout=w.Layout(width="190px"),
        )
        self.mine = w.Checkbox(
            value=False, description="Mine only", indent=False, layout=w.Layout(width="100px")
        )
        self.search = w.Text(placeholder="search", layout=w.Layout(width="140px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.listing = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
        self.listing.add_class("wb-datasets-list")
        for control in (self.purpose, self.state, self.mine):
            control.observe(lambda _: self.refresh(), names="value")
        self.search.continuous_update = False
        self.search.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.listing.observe(lambda ch: self.show(ch["new"]), names="value")

        # details
        self.summary = w.HTML()
        self.histogram = class_histogram()
        self.chart = w.Box([self.histogram], layout=w.Layout(width="100%", overflow="auto hidden"))
        self.previews = w.HBox(layout=WRAP)
        self.report = w.HTML()  # the per-file validation report of the last upload
        self.publish_button = w.Button(
            description="Publish", icon="cloud-upload", button_style="success"
        )
        self.offline_button = w.Button(description="Take offline", icon="cloud-download")
        self.visibility = w.Dropdown(
            options=visibilities, description="Visibility", layout=w.Layout(width="200px")
        )
        self.visibility_button = w.Button(description="Apply")
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.publish_button.on_click(lambda _: self._act(self.client.datasets.publish, "online"))
        self.offline_button.on_click(
            lambda _: self._act(self.client.datasets.take_offline, "offline")
        )
        self.visibility_button.on_click(lambda _: self.apply_visibility())
        self.delete_button.on_click(lambda _: self.delete())

        # upload
        self.split = w.ToggleButtons(options=["train", "test"], value="train")
        self.file = w.FileUpload(
            accept=".zip,.tar,.tar.gz,.tgz", multiple=False, description="Archive"
        )
        self.server_path = w.Text(
            placeholder="…or a path on the server", layout=w.Layout(width="260px")
        )
        self.upload_button = w.Button(description="Upload", icon="upload")
        self.progress = w.IntProgress(
            value=0, min=0, max=100, description="Upload", layout=w.Layout(width="320px")
        )
        self.upload_button.on_click(lambda _: self.upload())

        self.details = w.VBox(
            [
                self.summary,
                w.HBox(
                    [
                        self.publish_button,
                        self.offline_button,
                        self.visibility,
                        self.visibility_button,
                        self.delete_button,
                    ],
                    layout=WRAP,
                ),
                self.chart,
                w.HTML("<b>Samples</b>"),
                self.previews,
                w.HTML("<b>Upload an archive</b> (zip, tar or tar.gz; see docs/datasets.md)"),
                w.HBox([self.split, self.file, self.server_path], layout=WRAP),
                w.HBox([self.upload_button, self.progress], layout=WRAP),
                w.HTML(
                    "<small>The Archive button sends the file through this panel's kernel: "
                    "for large archives, upload them with JupyterLab's file browser and "
                    "type their path instead.</small>"
                ),
                self.report,
            ]
        )
        self.details.layout.display = "none"

        self.create_form = CreateForm(self._created, visibilities)
        super().__init__(
            [
                w.HBox(
                    [self.purpose, self.state, self.mine, self.search, self.refresh_button],
                    layout=WRAP,
                ),
                self.listing,
                self.status,
                w.Accordion(
                    children=[self.create_form], titles=("New dataset",), selected_index=None
                ),
                self.details,
            ],
            **kwargs,
        )
        self.create_form.client = client

    # --- actions --------------------------------------------------------------------------

    @property
    def selected(self) -> DatasetInfo | None:
        return self.datasets.get(self.listing.value) if self.listing.value else None

    def refresh(self) -> None:
        try:
            found = self.client.datasets.list(
                purpose=None if self.purpose.value == ALL else self.purpose.value,
                state=None if self.state.value == ALL else self.state.value,
                mine=self.mine.value or None,
                q=self.search.value or None,
            )
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        keep = self.listing.value
        self.datasets = {ds.id: ds for ds in found}
        self.listing.options = [(_label(ds), ds.id) for ds in found]
        self.listing.value = keep if keep in self.datasets else None
        self.status.ok(f"{len(found)} datasets")

    def show(self, dataset_id: int | None) -> None:
        ds = self.datasets.get(dataset_id) if dataset_id else None
        if ds is None:
            self.details.layout.display = "none"
            return
        self.details.layout.display = ""
        self.delete_button.description = "Delete"
        self.report.value = ""
        self.summary.value = _summary_html(ds)
        self.visibility.value = ds.visibility
        online = ds.state == "online"
        self.publish_button.layout.display = "none" if online else ""
        self.offline_button.layout.display = "" if online else "none"
        stats = ds.statistics
        with self.histogram.batch_update():
            bar = self.histogram.data[0]
            bar.x = list(stats.class_counts) if stats else []
            bar.y = list(stats.class_counts.values()) if stats else []
            self.histogram.layout.title.text = f"Class histogram (train) · {ds.name}"
        self.previews.children = self._previews(ds)

    def _previews(self, ds: DatasetInfo) -> tuple[w.Widget, ...]:
        if "train" not in ds.splits:
            return (w.HTML("<i>No archive uploaded yet.</i>"),)
        try:
            page = self.client.datasets.samples(ds.id, "train", 0, PREVIEW_SAMPLES)
            cards: list[w.Widget] = []
            for sample in page.samples:
                if sample.kind == "image":
                    raw = self.client.datasets.sample_bytes(ds.id, "train", sample.path)
                    body: w.Widget = w.Image(value=raw, width=64, height=64)
                else:
                    body = w.HTML(
                        f"<div style='width:180px;font-size:11px'>"
                        f"{escape((sample.text or '')[:160])}</div>"
                    )
                cards.append(
                    w.VBox([body, w.Label(sample.label or "")], layout=w.Layout(margin="2px 6px"))
                )
            return tuple(cards)
        except WorkbenchError as exc:
            self.status.error(exc)
            return ()

    def _act(self, call: Callable[[int], DatasetInfo], done: str) -> None:
        ds = self.selected
        if ds is None:
            return
        try:
            call(ds.id)
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.refresh()
        self.show(ds.id)
        self.status.ok(f"{ds.name} is {done}")

    def apply_visibility(self) -> None:
        ds = self.selected
        if ds is None:
            return
        self._act(
            lambda i: self.client.datasets.update(i, visibility=self.visibility.value),
            str(self.visibility.value),
        )

    def delete(self) -> None:
        """First click asks for confirmation, the second deletes."""
        ds = self.selected
        if ds is None:
            return
        question = f"Click '{CONFIRM_DELETE}' to delete {escape(ds.name)} and its files."
        if not confirmed(self.delete_button, self.status, question):
            return
        try:
            self.client.datasets.delete(ds.id)
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.listing.value = None
        self.refresh()
        self.status.ok(f"deleted {ds.name}")

    def upload(self) -> None:
        ds = self.selected
        if ds is None:
            return
        self.progress.value = 0
        self.progress.bar_style = ""
        try:
            if self.file.value:
                item = self.file.value[0]
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / Path(item["name"]).name
                    path.write_bytes(item["content"])
                    done = self._upload_path(ds, path)
            elif self.server_path.value:
                done = self._upload_path(ds, Path(self.server_path.value).expanduser())
            else:
                self.status.value = "Choose an archive or type a path on the server first."
                return
        except WorkbenchError as exc:
            self.progress.bar_style = "danger"
            self.status.error(exc)
            report = exc.details.get("report")
            self.report.value = (
                report_html(ValidationReport.model_validate(report)) if report else ""
            )
            return
        except OSError as exc:
            self.progress.bar_style = "danger"
            self.status.value = f"<span style='color:#b71c1c'>Cannot read the file: {exc}</span>"
            return
        self.file.value = ()
        self.refresh()
        self.show(ds.id)
        self.status.ok(done)
        split = self.selected.splits.get(self.split.value) if self.selected else None
        self.report.value = report_html(split.report) if split else ""

    def _upload_path(self, ds: DatasetInfo, path: Path) -> str:
        def progress(sent: int, total: int) -> None:
            self.progress.value = int(100 * sent / max(total, 1))

        info = self.client.datasets.upload(ds.id, self.split.value, path, progress=progress)
        self.progress.bar_style = "success"
        split = info.splits[self.split.value]  # type: ignore[index]
        return (
            f"{path.name}: {split.statistics.samples} samples in "
            f"{len(split.statistics.classes)} classes, {len(split.report.warnings)} warnings"
        )

    def _created(self, ds: DatasetInfo) -> None:
        self.refresh()
        self.listing.value = ds.id
        self.status.ok(f"created {ds.name} (#{ds.id}); upload its archive below")


class CreateForm(w.VBox):
    """The "new dataset" form; the choices offered follow the purpose."""

    client: WorkbenchClient

    def __init__(
        self, on_created: Callable[[DatasetInfo], None], visibilities: list[Visibility]
    ) -> None:
        self.on_created = on_created
        self.name = w.Text(description="Name")
        self.description = w.Textarea(description="Description", rows=2)
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.format = w.Dropdown(description="Format")
        self.split_mode = w.Dropdown(options=list(SplitMode), description="Test set")
        self.train_ratio = w.FloatSlider(
            value=0.8, min=0.05, max=0.95, step=0.05, description="Train ratio"
        )
        self.visibility = w.Dropdown(options=visibilities, description="Visibility")
        self.create_button = w.Button(description="Create", button_style="primary")
        self.message = Status()
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        self.sub_purpose.observe(lambda _: self._sub_purpose_changed(), names="value")
        self.create_button.on_click(lambda _: self.create())
        self._purpose_changed()
        super().__init__(
            [
                self.name,
                self.description,
                self.purpose,
                self.sub_purpose,
                self.format,
                self.split_mode,
                self.train_ratio,
                self.visibility,
                self.create_button,
                self.message,
            ]
        )

    def _purpose_changed(self) -> None:
        choices = list(SUB_PURPOSES[Purpose(self.purpose.value)])
        self.sub_purpose.options = choices
        self.sub_purpose.value = choices[0]
        self._sub_purpose_changed()

    def _sub_purpose_changed(self) -> None:
        if self.sub_purpose.value is None:
            return
        key = (Purpose(self.purpose.value), SubPurpose(self.sub_purpose.value))
        formats = list(FORMATS_FOR[key])
        self.format.options = formats
        self.format.value = formats[0]

    def create(self) -> None:
        try:
            ds = self.client.datasets.create(
                name=self.name.value.strip(),
                description=self.description.value,
                purpose=self.purpose.value,
                sub_purpose=self.sub_purpose.value,
                format=self.format.value,
                split_mode=self.split_mode.value,
                train_ratio=self.train_ratio.value,
                visibility=self.visibility.value,
            )
        except WorkbenchError as exc:
            self.message.error(exc)
            return
        self.message.ok(f"created {ds.name}")
        self.name.value = ""
        self.on_created(ds)


def report_html(report: ValidationReport, limit: int = 50) -> str:
    """The per-file validation report as a small table: errors first, then warnings."""
    rows = [("error", i) for i in report.errors] + [("warning", i) for i in report.warnings]
    if not rows:
        return f"<small>Validation: {report.files_checked} files checked, all fine.</small>"
    colour = {"error": "#b71c1c", "warning": "#e65100"}
    cells = "".join(
        f"<tr><td style='color:{colour[kind]}'>{kind}</td><td><code>{escape(i.path)}</code>"
        f"</td><td>{escape(i.message)}</td></tr>"
        for kind, i in rows[:limit]
    )
    more = len(rows) - limit + report.errors_truncated
    tail = f"<div>…and {more} more</div>" if more > 0 else ""
    return (
        f"<div><b>Validation report</b> ({report.format}, {report.files_checked} files "
        f"checked)</div><table style='font-size:12px'>{cells}</table>{tail}"
    )


def visibility_choices(is_admin: bool) -> list[Visibility]:
    """Only admins may mark something preset, so only they are offered it."""
    return [v for v in Visibility if is_admin or v is not Visibility.PRESET]


def class_histogram() -> go.FigureWidget:
    figure = go.FigureWidget(
        data=[go.Bar(x=[], y=[], marker_color="#1976d2")],
        layout=go.Layout(
            title="Class histogram (train)",
            # plotly cannot measure a container that is not on screen yet, so the size is
            # set: it fits the panel's minimum width (workbench_ext/lab/style/index.css)
            width=CHART_WIDTH,
            height=260,
            margin={"l": 40, "r": 10, "t": 40, "b": 40},
            xaxis={"title": "class", "type": "category"},
            yaxis_title="samples",
        ),
    )
    figure._config = {"displaylogo": False}
    return figure


def _summary_html(ds: DatasetInfo) -> str:
    test_set = (
        "independent test set"
        if ds.split_mode is SplitMode.INDEPENDENT
        else f"test = {1 - ds.train_ratio:.0%} of train"
    )
    facts = " · ".join(
        [
            f"{ds.purpose}/{ds.sub_purpose}",
            f"format {ds.format}",
            f"{ds.annotation_type} labels",
            test_set,
            ds.state,
            ds.visibility,
            f"owner {ds.owner}",
        ]
    )
    lines = []
    for split in sorted(ds.splits):
        info, st = ds.splits[split], ds.splits[split].statistics
        extra = ""
        if st.image_sizes:
            extra = ", " + ", ".join(f"{k} ({v})" for k, v in list(st.image_sizes.items())[:3])
        if st.text_lengths:
            extra = (
                f", {st.text_lengths.min:.0f} to {st.text_lengths.max:.0f} characters "
                f"(mean {st.text_lengths.mean:.0f})"
            )
        lines.append(
            f"<b>{split}</b>: {escape(info.archive_name)}, {st.samples} samples, "
            f"{len(st.classes)} classes{escape(extra)}, {len(info.report.warnings)} warnings"
        )
    desc = f"<div>{escape(ds.description)}</div>" if ds.description else ""
    return (
        f"<h3 style='margin:4px 0'>{escape(ds.name)}</h3>{desc}"
        f"<div style='color:var(--jp-ui-font-color2, #555)'>{escape(facts)}</div>"
        f"<div style='line-height:1.4'>{'<br>'.join(lines)}</div>"
    )
