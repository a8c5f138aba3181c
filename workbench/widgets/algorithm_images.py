"""An algorithm's images in the Algorithms section: :class:`ImagesBox` gives it its train
or predict image from a workspace's ``docker_image/`` tar (its validation report read
first), a tar upload with a progress bar, or a pull, and follows the load; and how an
image, its config and a tar's report read in HTML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from workbench.algorithms.schemas import AlgorithmInfo, ImageInfo
from workbench.client import WorkbenchClient
from workbench.enums import ImageKind, ImageState
from workbench.schemas.images import ImageConfig
from workbench.widgets import common
from workbench.widgets.poller import Poller
from workbench.workspaces.schemas import ImageTarInfo, TarReport

SOURCES = {"workspace": "a workspace", "upload": "a tar upload", "pull": "a pull"}


class ImagesBox(w.VBox):
    """An algorithm's train or predict image from a workspace's tar, an upload or a pull."""

    def __init__(
        self,
        client: WorkbenchClient,
        on_changed: Callable[[AlgorithmInfo], None],
        poll_interval: float,
    ) -> None:
        self.client = client
        self.on_changed = on_changed
        self.algorithm: AlgorithmInfo | None = None
        self.status = common.Status()
        self.kind = w.ToggleButtons(
            options=list(ImageKind), value=ImageKind.TRAIN, description="Image"
        )
        self.source = w.ToggleButtons(
            options=[(label, key) for key, label in SOURCES.items()],
            value="workspace",
            description="From",
        )
        self.kind.add_class("wb-algo-image-kind")
        self.kind.observe(lambda _: self.load_tars(), names="value")  # to be checked again
        self.source.observe(lambda _: self._source_changed(), names="value")
        self.sources = {
            "workspace": self._build_from_workspace(),
            "upload": self._build_from_upload(),
            "pull": self._build_from_pull(),
        }
        self.source_box = w.Box()
        self.progress = common.progress_bar("Loading", "320px", hidden=True)
        self.poller = Poller(self._follow, poll_interval)
        super().__init__(
            [
                w.HTML("<b>Images</b>"),
                w.HBox([self.kind], layout=common.wrap()),
                w.HBox([self.source], layout=common.wrap()),
                self.source_box,
                self.progress,
                self.status,
            ]
        )
        self._source_changed()

    def _build_from_workspace(self) -> w.VBox:
        """From a workspace: pick the workspace and the tar, read its report, then use it."""
        self.workspace = w.Dropdown(description="Workspace", layout=w.Layout(width="300px"))
        self.tar = w.Dropdown(description="Tar", layout=w.Layout(width="300px"))
        self.report = w.HTML()
        self.use_button = w.Button(
            description="Use this image", icon="check", button_style="success", disabled=True
        )
        self.workspace.add_class("wb-algo-workspace")
        self.tar.add_class("wb-algo-tar")
        self.report.add_class("wb-algo-report")
        self.use_button.add_class("wb-algo-use")
        common.on_pick(self.workspace, lambda _: self.load_tars())
        common.on_pick(self.tar, lambda _: self.inspect())
        self.use_button.on_click(lambda _: self.use_workspace_tar())
        return w.VBox(
            [w.HBox([self.workspace, self.tar], layout=common.wrap()), self.report, self.use_button]
        )

    def _build_from_upload(self) -> w.VBox:
        """An upload: a file through the kernel, or a path on the server."""
        self.file = w.FileUpload(accept=".tar", multiple=False, description="Tar")
        self.server_path = w.Text(
            placeholder="…or a path on the server", layout=w.Layout(width="260px")
        )
        self.upload_button = w.Button(description="Upload", icon="upload")
        self.upload_button.on_click(lambda _: self.upload())
        return w.VBox(
            [
                w.HBox([self.file, self.server_path, self.upload_button], layout=common.wrap()),
                w.HTML(
                    "<small>A <code>docker save</code> tar. The Tar button sends the file "
                    "through this panel's kernel: for large tars, upload them with "
                    "JupyterLab's file browser and type their path instead.</small>"
                ),
            ]
        )

    def _build_from_pull(self) -> w.HBox:
        """A pull: the image's reference."""
        self.reference = w.Text(placeholder="host/project/name:tag", layout=w.Layout(width="300px"))
        self.pull_button = w.Button(description="Pull", icon="download")
        self.pull_button.on_click(lambda _: self.pull())
        return w.HBox([self.reference, self.pull_button], layout=common.wrap())

    def show(self, algo: AlgorithmInfo) -> None:
        changed = self.algorithm is None or self.algorithm.id != algo.id
        self.algorithm = algo
        if changed:
            self.progress.layout.display = "none"
            self.status.value = ""
            self.load_workspaces()
        if self._loading(algo):
            self.poller.start()

    def _source_changed(self) -> None:
        self.source_box.children = (self.sources[self.source.value],)

    # --- from a workspace -----------------------------------------------------------------

    def load_workspaces(self) -> None:
        """The workspaces this user owns or is a member of."""
        found = common.attempt(self.status, self.client.workspaces.list)
        if found is common.FAILED:
            return
        keep = self.workspace.value
        options = [(f"#{ws.id} {ws.name} · {ws.owner}", ws.id) for ws in found]
        common.replace_options(self.workspace, [("choose a workspace", None), *options], keep)
        if self.workspace.value == keep:
            self.load_tars()

    def load_tars(self) -> None:
        """The workspace's ``docker_image/`` tars of the chosen kind, and those whose name
        breaks the naming (their report says why they cannot be used)."""
        self.use_button.disabled = True
        self.report.value = ""
        tars: list[ImageTarInfo] = []
        if self.workspace.value is not None:
            found = common.attempt(
                self.status, lambda: self.client.workspaces.images(self.workspace.value)
            )
            tars = [] if found is common.FAILED else found
        fitting = [t for t in tars if t.kind in (self.kind.value, None)]
        options = [(f"{t.filename} ({common.size_text(t.size)})", t.filename) for t in fitting]
        common.replace_options(self.tar, [("choose a tar", None), *options], None)
        if self.workspace.value is not None and not fitting:
            self.report.value = (
                f"<i>No docker_image/{self.kind.value}-&lt;name&gt;.tar in this workspace: "
                "build one in the Workspaces tab.</i>"
            )

    def inspect(self) -> None:
        """Show the chosen tar's validation report; only a tar without problems may be used."""
        self.use_button.disabled = True
        self.report.value = ""
        if self.workspace.value is None or self.tar.value is None:
            return
        report = common.attempt(
            self.status,
            lambda: self.client.workspaces.inspect_image(self.workspace.value, self.tar.value),
        )
        if report is common.FAILED:
            return
        self.report.value = tar_report_html(report)
        self.use_button.disabled = not report.ok or report.kind != self.kind.value

    def use_workspace_tar(self) -> None:
        algo = self.algorithm
        if algo is None or self.use_button.disabled:
            return
        self._load(
            f"{self.tar.value} from workspace #{self.workspace.value}",
            lambda: self.client.algorithms.image_from_workspace(
                algo.id, self.kind.value, self.workspace.value, self.tar.value, wait=False
            ),
        )

    # --- upload and pull ------------------------------------------------------------------

    def upload(self) -> None:
        algo = self.algorithm
        if algo is None:
            return

        def progress(sent: int, total: int) -> None:
            self.progress.value = int(90 * sent / max(total, 1))

        def send(path: Path) -> AlgorithmInfo:
            return self.client.algorithms.upload_image(
                algo.id, self.kind.value, path, progress=progress, wait=False
            )

        try:
            with common.picked_file(self.file, self.server_path) as path:
                if path is None:
                    self.status.problem("Choose a tar or type a path on the server first.")
                    return
                self._load(path.name, lambda: send(path))
        except OSError as exc:
            self.progress.bar_style = "danger"
            self.status.problem(f"Cannot read the file: {exc}")

    def pull(self) -> None:
        algo = self.algorithm
        reference = self.reference.value.strip()
        if algo is None or not reference:
            return
        self._load(
            reference,
            lambda: self.client.algorithms.pull_image(
                algo.id, self.kind.value, reference, wait=False
            ),
        )

    # --- loading and following the image's state ------------------------------------------

    def _load(self, what: str, call: Callable[[], AlgorithmInfo]) -> None:
        """Send an image call (it queues the load as a job), then follow the job's progress
        and the image's state while it loads: the kernel stays free meanwhile."""
        self.progress.layout.display = ""
        self.progress.value, self.progress.bar_style = 5, "info"
        self.status.value = f"loading {common.escape(what)} as the {self.kind.value} image…"
        algo = common.attempt(self.status, call)
        if algo is common.FAILED:
            self.progress.bar_style = "danger"
            return
        self.algorithm = algo
        self._image_state(algo)
        self.on_changed(algo)
        if self._loading(algo):
            self.poller.start()

    def _loading(self, algo: AlgorithmInfo) -> bool:
        return any(image.state == ImageState.LOADING for image in (algo.train, algo.predict))

    def _follow(self) -> bool:
        """One poll while an image loads: its state, until it is ready or failed."""
        algo = self.algorithm
        if algo is None:
            return False
        shown = algo.id
        algo = common.attempt(self.status, lambda: self.client.algorithms.get(shown))
        if algo is common.FAILED:
            return False
        if self.algorithm is None or self.algorithm.id != algo.id:
            return False  # another algorithm is shown now
        self.algorithm = algo
        self._image_state(algo)
        self.on_changed(algo)
        return self._loading(algo)

    def _image_state(self, algo: AlgorithmInfo) -> None:
        image = algo.train if self.kind.value == ImageKind.TRAIN else algo.predict
        if image.state == ImageState.LOADING:
            self.progress.layout.display = ""
            self.progress.bar_style = "info"
            self.status.value = f"the {self.kind.value} image is loading…{self._job_line(image)}"
        elif image.state == ImageState.READY:
            self.progress.value, self.progress.bar_style = 100, "success"
            self.status.ok(f"the {self.kind.value} image is ready: {image.image_ref}")
        elif image.state == ImageState.FAILED:
            self.progress.bar_style = "danger"
            self.status.problem(f"the {self.kind.value} image failed: {image.state_reason}")

    def _job_line(self, image: ImageInfo) -> str:
        """The load job's progress on the bar, and its state and newest log line as text."""
        if image.job_id is None:
            return ""
        job_id = image.job_id
        job = common.attempt(self.status, lambda: self.client.jobs.get(job_id))
        page = common.attempt(self.status, lambda: self.client.jobs.log(job_id))
        if job is common.FAILED or page is common.FAILED:
            return ""
        self.progress.value = max(5, round(job.progress * 100))
        lines = page.text.splitlines()
        last = f": {common.escape(lines[-1][-160:])}" if lines else ""
        return f" <small>(job {job_id}, {job.state}{last})</small>"


# --- HTML views ---------------------------------------------------------------------------


def image_html(image: ImageInfo) -> str:
    """One image's state, reference, digest, size, source and config."""
    facts = [f"image {common.state_html(image.state)}"]
    if image.image_ref:
        facts.append(f"<code>{common.escape(image.image_ref)}</code>")
    if image.digest:
        facts.append(
            f"<code title='{common.escape(image.digest)}'>{common.escape(image.digest[:19])}</code>"
        )
    if image.size:
        facts.append(common.size_text(image.size))
    if image.source:
        detail = f" {common.escape(image.source_detail)}" if image.source_detail else ""
        facts.append(f"from {common.escape(image.source)}{detail}")
    reason = (
        f"<div style='color:#b71c1c'>{common.escape(image.state_reason)}</div>"
        if image.state_reason
        else ""
    )
    config = ""
    if image.config is not None:
        config = f"<div style='font-size:12px'>{config_html(image.config)}</div>"
    return f"<div>{' · '.join(facts)}</div>{reason}{config}"


def config_html(config: ImageConfig) -> str:
    """An image config's entrypoint, command, environment and ports, one line each."""
    lines = [
        f"entrypoint <code>{common.escape(json.dumps(config.entrypoint))}</code> · "
        f"cmd <code>{common.escape(json.dumps(config.cmd))}</code>"
    ]
    if config.env:
        names = ", ".join(sorted(config.env))
        lines.append(f"env <code>{common.escape(names)}</code>")
    if config.exposed_ports:
        lines.append(f"exposed ports {', '.join(str(p) for p in config.exposed_ports)}")
    if config.workdir or config.user:
        lines.append(
            f"workdir <code>{common.escape(config.workdir or '/')}</code> · "
            f"user <code>{common.escape(config.user or 'root')}</code>"
        )
    return "<br>".join(lines)


def tar_report_html(report: TarReport) -> str:
    """A workspace tar's validation report: problems and warnings first, then what the
    image holds (tags, digest, size, layers, its config)."""
    verdict = (
        "<div style='color:#1b5e20'><b>No problems</b>: this image can be used.</div>"
        if report.ok
        else "<div style='color:#b71c1c'><b>Problems</b> (fix them and build again):</div>"
    )
    notes = "".join(f"<li style='color:#b71c1c'>{common.escape(p)}</li>" for p in report.problems)
    notes += "".join(f"<li style='color:#e65100'>{common.escape(n)}</li>" for n in report.warnings)
    facts = [
        ["naming", "ok" if report.naming_ok else "<b style='color:#b71c1c'>not kind-name.tar</b>"],
        ["tags", common.escape(", ".join(report.tags)) or "<i>none</i>"],
        ["digest", f"<code>{common.escape(report.digest)}</code>" if report.digest else ""],
        ["size", common.size_text(report.size)],
        ["layers", str(report.layers)],
    ]
    if report.config is not None:
        facts.append(["config", config_html(report.config)])
    return (
        f"<div style='margin-top:4px'><b>Validation report</b> of "
        f"<code>{common.escape(report.path)}</code></div>{verdict}"
        f"{f'<ul style=margin:2px>{notes}</ul>' if notes else ''}"
        f"{common.table_html(['', ''], facts, 'wb-tar-report')}"
    )
