"""The Datasets section of the side panel: list with filters, details with a class
histogram and sample previews, create, upload with a progress bar, publish, visibility."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ipywidgets as w
import plotly.graph_objects as go

from workbench.client import WorkbenchClient
from workbench.datasets.schemas import DatasetInfo
from workbench.datasets.types import FORMATS_FOR, ValidationReport
from workbench.enums import AnnotationType, Purpose, SplitMode, SubPurpose, Visibility
from workbench.errors import WorkbenchError
from workbench.widgets import common
from workbench.widgets.charts import Chart, chart
from workbench.widgets.section import Section

PREVIEW_SAMPLES = 8


class DatasetsSection(Section[DatasetInfo]):
    area = "datasets"
    empty_hint = "New dataset, below, makes one from an archive (or change the filters)."
    deletes = " and its files"

    # --- the parts ------------------------------------------------------------------------

    def build_filters(self) -> list[w.Widget]:
        self.state = common.filter_choice("State", ["draft", "online", "offline"], "190px")
        return self.owned_filters(self.state)

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        self.create_form = CreateForm(self.client, self._created, self.visibilities)
        return [("New dataset", self.create_form)]

    def build_details(self) -> w.VBox:
        """A dataset: its summary and sharing, its classes and samples, an upload to it."""
        self.summary = w.HTML()
        self.histogram = class_histogram()
        self.chart = w.Box([self.histogram], layout=w.Layout(width="100%", overflow="auto hidden"))
        self.chart.add_class("wb-dataset-histogram")
        self.previews = w.HBox(layout=common.wrap())
        self.report = w.HTML()  # the per-file validation report of the last upload
        datasets = self.client.datasets
        sharing = self.sharing(datasets.publish, datasets.take_offline, datasets.update)
        #: what Publish, Take offline, Apply and Delete answer, under their buttons
        self.action_status = common.Status(css="dataset-action-status")
        self.upload_box = self._build_upload()
        return w.VBox(
            [
                self.summary,
                w.HBox([*sharing, self.delete_button], layout=common.wrap()),
                self.action_status,
                self.chart,
                w.HTML("<b>Samples</b>"),
                self.previews,
                self.upload_box,
                self.upload_status,
                self.report,
            ]
        )

    def _build_upload(self) -> w.VBox:
        """An archive uploaded to the dataset shown (its status is :attr:`upload_status`)."""
        self.split = w.ToggleButtons(options=["train", "test"], value="train")
        self.file = w.FileUpload(
            accept=".zip,.tar,.tar.gz,.tgz", multiple=False, description="Archive"
        )
        self.server_path = w.Text(
            placeholder="…or a path on the server", layout=w.Layout(width="260px")
        )
        self.upload_button = w.Button(description="Upload", icon="upload")
        self.progress = common.progress_bar("Upload", "320px")
        self.upload_button.on_click(lambda _: self.upload())
        #: what Upload answers, under its button (the report of its files below it)
        self.upload_status = common.Status()
        common.name_for_css(
            "dataset",
            {
                "split": self.split,
                "file": self.file,
                "upload": self.upload_button,
                "upload-status": self.upload_status,
            },
        )
        return w.VBox(
            [
                w.HTML("<b>Upload an archive</b> (zip, tar or tar.gz; see docs/datasets.md)"),
                w.HBox([self.split, self.file, self.server_path], layout=common.wrap()),
                w.HBox([self.upload_button, self.progress], layout=common.wrap()),
                w.HTML(
                    "<small>The Archive button sends the file through this panel's kernel: "
                    "for large archives, upload them with JupyterLab's file browser and "
                    "type their path instead.</small>"
                ),
            ]
        )

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[DatasetInfo]:
        return self.client.datasets.list(
            state=common.chosen(self.state), **self.owned_filter_values()
        )

    def label(self, ds: DatasetInfo) -> str:
        return (
            f"#{ds.id} {ds.name} · {ds.purpose}/{ds.sub_purpose} · {ds.state} · "
            f"{ds.visibility} · {ds.owner}"
        )

    def render(self, ds: DatasetInfo) -> None:
        self.report.value = ""
        self.summary.value = _summary_html(ds)
        self.show_sharing(ds)
        # an online dataset's archives are fixed: trainings may be reading them
        self.upload_box.layout.display = "none" if ds.state == "online" else ""
        stats = ds.statistics
        with self.histogram.drawing() as figure:
            bar = figure.data[0]
            bar.x = list(stats.class_counts) if stats else []
            bar.y = list(stats.class_counts.values()) if stats else []
            figure.layout.title.text = f"Class histogram (train) · {ds.name}"
        self.previews.children = self._previews(ds)

    # --- details and actions --------------------------------------------------------------

    def _previews(self, ds: DatasetInfo) -> tuple[w.Widget, ...]:
        if "train" not in ds.splits:
            return (w.HTML("<i>No archive uploaded yet.</i>"),)

        def cards() -> tuple[w.Widget, ...]:
            page = self.client.datasets.samples(ds.id, "train", 0, PREVIEW_SAMPLES)
            found: list[w.Widget] = []
            for sample in page.samples:
                if sample.kind == "image":
                    raw = self.client.datasets.sample_bytes(ds.id, "train", sample.path)
                    body: w.Widget = w.Image(value=raw, width=64, height=64)
                else:
                    body = w.HTML(
                        f"<div style='width:180px;font-size:11px'>"
                        f"{common.escape((sample.text or '')[:160])}</div>"
                    )
                found.append(
                    w.VBox([body, w.Label(sample.label or "")], layout=w.Layout(margin="2px 6px"))
                )
            return tuple(found)

        shown = self.attempt(cards)
        return () if shown is common.FAILED else shown

    def upload(self) -> None:
        ds = self.selected
        if ds is None:
            return
        self.progress.value = 0
        self.progress.bar_style = ""
        self.upload_status.value = "uploading…"
        try:
            with common.picked_file(self.file, self.server_path) as path:
                if path is None:
                    self.upload_status.value = (
                        "Choose an archive or type a path on the server first."
                    )
                    return
                done = self._upload_path(ds, path)
        except WorkbenchError as exc:
            self.progress.bar_style = "danger"
            self.upload_status.error(exc)
            report = exc.details.get("report")
            self.report.value = (
                report_html(ValidationReport.model_validate(report)) if report else ""
            )
            return
        except OSError as exc:
            self.progress.bar_style = "danger"
            self.upload_status.problem(f"Cannot read the file: {exc}")
            return
        self.refresh()  # shows it again, with its new split
        self.upload_status.ok(done)
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
        self.close_forms()  # the upload, next, is in the details below
        self.saved(ds, f"created {ds.name} (#{ds.id}); upload its archive below")


class CreateForm(w.VBox):
    """The "new dataset" form; the choices offered follow the purpose."""

    def __init__(
        self,
        client: WorkbenchClient,
        on_created: Callable[[DatasetInfo], None],
        visibilities: list[Visibility],
    ) -> None:
        self.client = client
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
        self.message = common.Status()
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        self.sub_purpose.observe(lambda _: self._sub_purpose_changed(), names="value")
        self.create_button.on_click(lambda _: self.create())
        self._purpose_changed()
        self.add_class("wb-dataset-create")
        #: the fields of the create body, by name, in the order the form shows them
        self.fields: dict[str, w.ValueWidget] = {
            "name": self.name,
            "description": self.description,
            "purpose": self.purpose,
            "sub_purpose": self.sub_purpose,
            "format": self.format,
            "split_mode": self.split_mode,
            "train_ratio": self.train_ratio,
            "visibility": self.visibility,
        }
        super().__init__([*self.fields.values(), self.create_button, self.message])

    def _purpose_changed(self) -> None:
        common.offer_sub_purposes(self.purpose, self.sub_purpose)
        self._sub_purpose_changed()

    def _sub_purpose_changed(self) -> None:
        if self.sub_purpose.value is None:
            return
        key = (Purpose(self.purpose.value), SubPurpose(self.sub_purpose.value))
        formats = list(FORMATS_FOR[key])
        self.format.options = formats
        self.format.value = formats[0]

    def create(self) -> None:
        body = {name: field.value for name, field in self.fields.items()}
        body["name"] = body["name"].strip()
        ds = common.attempt(self.message, lambda: self.client.datasets.create(**body))
        if ds is common.FAILED:
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
        f"<tr><td style='color:{colour[kind]}'>{kind}</td><td><code>{common.escape(i.path)}</code>"
        f"</td><td>{common.escape(i.message)}</td></tr>"
        for kind, i in rows[:limit]
    )
    more = len(rows) - limit + report.errors_truncated
    tail = f"<div>…and {more} more</div>" if more > 0 else ""
    return (
        f"<div><b>Validation report</b> ({report.format}, {report.files_checked} files "
        f"checked)</div><table style='font-size:12px'>{cells}</table>{tail}"
    )


def class_histogram() -> Chart:
    return chart(
        [go.Bar(x=[], y=[], marker_color="#1976d2")],
        empty="No class counts yet: upload a train split.",
        title="Class histogram (train)",
        height=260,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "class", "type": "category"},
        yaxis_title="samples",
    )


#: what a dataset's annotations are, in its summary
ANNOTATIONS = {
    AnnotationType.LABEL: "a class per sample",
    AnnotationType.POSITION: "boxes or regions",
    AnnotationType.ENTITY: "text spans",
    AnnotationType.NONE: "unlabelled",
}


def _summary_html(ds: DatasetInfo) -> str:
    test_set = (
        "independent test set"
        if ds.split_mode is SplitMode.INDEPENDENT
        else f"test = {1 - ds.train_ratio:.0%} of train"
    )
    facts = " · ".join(
        fact
        for fact in [
            f"{ds.purpose}/{ds.sub_purpose}",
            f"format {ds.format}",
            ANNOTATIONS.get(ds.annotation_type, "") if ds.annotation_type else "",
            test_set,
            ds.state,
            ds.visibility,
            f"owner {ds.owner}",
        ]
        if fact
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
            f"<b>{split}</b>: {common.escape(info.archive_name)}, {st.samples} samples, "
            f"{len(st.classes)} classes{common.escape(extra)}, {len(info.report.warnings)} warnings"
        )
    return (
        f"{common.heading_html(ds.name, ds.description)}"
        f"<div style='color:var(--jp-ui-font-color2, #555)'>{common.escape(facts)}</div>"
        f"<div style='line-height:1.4'>{'<br>'.join(lines)}</div>"
    )
