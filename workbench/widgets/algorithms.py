"""The Algorithms section of the side panel (manual 2.2): the library with filters, an
algorithm's details (training and inference settings, each image's state), the create and
edit form, its images (a workspace's ``docker_image/`` tar checked before it is used, a tar
upload with a progress bar, or a pull), online/offline, visibility and delete."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.algorithms.params import ApiSpec, ImageSettings, ParamSpec
from workbench.algorithms.schemas import AlgorithmInfo, ImageInfo
from workbench.client import WorkbenchClient
from workbench.enums import ImageKind, ImageState, Purpose, Visibility
from workbench.images import ImageConfig
from workbench.widgets.common import (
    FAILED,
    Section,
    Status,
    attempt,
    chosen,
    escape,
    filter_choice,
    heading_html,
    offer_sub_purposes,
    on_pick,
    picked_file,
    plain,
    replace_options,
    search_box,
    size_text,
    state_html,
    table_html,
    visibility_choices,
    wrap,
)
from workbench.widgets.poller import Poller
from workbench.workspaces.builds import ImageTarInfo, TarReport

PARAM_TYPES = ["int", "float", "str", "bool"]
API_TYPES = ["string", "integer", "number", "boolean", "array", "object"]
SOURCES = {"workspace": "a workspace", "upload": "a tar upload", "pull": "a pull"}


class AlgorithmsSection(Section[AlgorithmInfo]):
    title = "Algorithms"
    noun = "algorithm"
    empty_hint = "New algorithm, below, makes one from a workspace's docker_image/ tars."
    deletes = " and its images"
    refresh_on_open = True  # it lists the images that workspaces build

    def __init__(self, client: WorkbenchClient, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)

        # filters
        self.show_only = filter_choice("Show", ["mine", "public", "preset"], "160px")
        self.purpose = filter_choice("Purpose", Purpose, "170px")
        self.state = filter_choice("State", ["draft", "online", "offline"], "170px")
        self.search = search_box("130px")
        self.watch(self.show_only, self.purpose, self.state, self.search)

        # details
        self.summary = w.HTML()
        sharing = self.sharing(
            client.algorithms.publish,
            client.algorithms.take_offline,
            client.algorithms.update,
            publish_label="Put online",
        )
        self.publish_button.add_class("wb-algo-publish")
        self.edit_button = w.Button(description="Edit", icon="pencil")
        self.edit_button.on_click(lambda _: self.edit())
        sharing.insert(2, self.edit_button)
        self.settings = w.HTML()
        self.images = ImagesBox(client, self._image_changed, self.poll_interval)

        self.form = AlgorithmForm(client, self._saved, visibility_choices(self.is_admin))
        self.arrange(
            filters=[self.show_only, self.purpose, self.state, self.search],
            forms=[("New algorithm", self.form)],
            details=w.VBox(
                [
                    self.summary,
                    w.HBox([*sharing, self.delete_button], layout=wrap()),
                    self.settings,
                    self.images,
                ]
            ),
        )

    @property
    def form_box(self) -> w.Accordion:
        """The accordion of the form (the Section's ``forms``)."""
        return self.forms

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[AlgorithmInfo]:
        return self.client.algorithms.list(
            visibility=chosen(self.show_only),
            purpose=chosen(self.purpose),
            state=chosen(self.state),
            q=self.search.value or None,
        )

    def label(self, algo: AlgorithmInfo) -> str:
        return (
            f"#{algo.id} {algo.name} · {algo.purpose}/{algo.sub_purpose} · {algo.state} · "
            f"{algo.visibility} · {algo.owner}"
        )

    def render(self, algo: AlgorithmInfo) -> None:
        self.summary.value = summary_html(algo)
        self.settings.value = settings_html(algo)
        self.show_sharing(algo)
        self.images.show(algo)

    def remove(self, algorithm_id: int) -> None:
        self.client.algorithms.delete(algorithm_id)

    def stop_polling(self) -> None:
        self.images.poller.stop()

    # --- actions --------------------------------------------------------------------------

    def edit(self) -> None:
        algo = self.selected
        if algo is None:
            return
        self.form.load(algo)
        self.open_form(0, f"Edit {algo.name}")

    def _saved(self, algo: AlgorithmInfo, created: bool) -> None:
        self.close_forms()
        self.saved(
            algo,
            f"created {algo.name} (#{algo.id}); give it its images below"
            if created
            else f"saved {algo.name}",
        )

    def _image_changed(self, algo: AlgorithmInfo) -> None:
        if self.listing.value == algo.id:
            self.items[algo.id] = algo
            self.summary.value = summary_html(algo)
            self.settings.value = settings_html(algo)


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
        self.status = Status()
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

        # from a workspace: pick the workspace and the tar, read its report, then use it
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
        on_pick(self.workspace, lambda _: self.load_tars())
        on_pick(self.tar, lambda _: self.inspect())
        self.use_button.on_click(lambda _: self.use_workspace_tar())

        # an upload
        self.file = w.FileUpload(accept=".tar", multiple=False, description="Tar")
        self.server_path = w.Text(
            placeholder="…or a path on the server", layout=w.Layout(width="260px")
        )
        self.upload_button = w.Button(description="Upload", icon="upload")
        self.upload_button.on_click(lambda _: self.upload())

        # a pull
        self.reference = w.Text(placeholder="host/project/name:tag", layout=w.Layout(width="300px"))
        self.pull_button = w.Button(description="Pull", icon="download")
        self.pull_button.on_click(lambda _: self.pull())

        self.progress = w.IntProgress(
            value=0,
            min=0,
            max=100,
            description="Loading",
            layout=w.Layout(width="320px", display="none"),
        )
        self.sources = {
            "workspace": w.VBox(
                [
                    w.HBox([self.workspace, self.tar], layout=wrap()),
                    self.report,
                    self.use_button,
                ]
            ),
            "upload": w.VBox(
                [
                    w.HBox([self.file, self.server_path, self.upload_button], layout=wrap()),
                    w.HTML(
                        "<small>A <code>docker save</code> tar. The Tar button sends the file "
                        "through this panel's kernel: for large tars, upload them with "
                        "JupyterLab's file browser and type their path instead.</small>"
                    ),
                ]
            ),
            "pull": w.HBox([self.reference, self.pull_button], layout=wrap()),
        }
        self.source_box = w.Box()
        self.poller = Poller(self._follow, poll_interval)
        super().__init__(
            [
                w.HTML("<b>Images</b>"),
                w.HBox([self.kind], layout=wrap()),
                w.HBox([self.source], layout=wrap()),
                self.source_box,
                self.progress,
                self.status,
            ]
        )
        self._source_changed()

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
        found = attempt(self.status, self.client.workspaces.list)
        if found is FAILED:
            return
        keep = self.workspace.value
        options = [(f"#{ws.id} {ws.name} · {ws.owner}", ws.id) for ws in found]
        replace_options(self.workspace, [("choose a workspace", None), *options], keep)
        if self.workspace.value == keep:
            self.load_tars()

    def load_tars(self) -> None:
        """The workspace's ``docker_image/`` tars of the chosen kind, and those whose name
        breaks the naming (their report says why they cannot be used)."""
        self.use_button.disabled = True
        self.report.value = ""
        tars: list[ImageTarInfo] = []
        if self.workspace.value is not None:
            found = attempt(
                self.status, lambda: self.client.workspaces.images(self.workspace.value)
            )
            tars = [] if found is FAILED else found
        fitting = [t for t in tars if t.kind in (self.kind.value, None)]
        options = [(f"{t.filename} ({size_text(t.size)})", t.filename) for t in fitting]
        replace_options(self.tar, [("choose a tar", None), *options], None)
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
        report = attempt(
            self.status,
            lambda: self.client.workspaces.inspect_image(self.workspace.value, self.tar.value),
        )
        if report is FAILED:
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
            with picked_file(self.file, self.server_path) as path:
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
        self.status.value = f"loading {escape(what)} as the {self.kind.value} image…"
        algo = attempt(self.status, call)
        if algo is FAILED:
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
        algo = attempt(self.status, lambda: self.client.algorithms.get(shown))
        if algo is FAILED:
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
        job = attempt(self.status, lambda: self.client.jobs.get(job_id))
        page = attempt(self.status, lambda: self.client.jobs.log(job_id))
        if job is FAILED or page is FAILED:
            return ""
        self.progress.value = max(5, round(job.progress * 100))
        lines = page.text.splitlines()
        last = f": {escape(lines[-1][-160:])}" if lines else ""
        return f" <small>(job {job_id}, {job.state}{last})</small>"


class ParamRows(w.VBox):
    """Editable rows of an image's parameters: name, type, default, description."""

    def __init__(self) -> None:
        self.rows: list[tuple[w.Text, w.Dropdown, w.Text, w.Text]] = []
        self.add_button = w.Button(description="Add parameter", icon="plus")
        self.add_button.on_click(lambda _: self.add())
        super().__init__([self.add_button])

    def add(self, name: str = "", spec: ParamSpec | None = None) -> None:
        spec = spec or ParamSpec()
        row = (
            w.Text(value=name, placeholder="NAME", layout=w.Layout(width="120px")),
            w.Dropdown(options=PARAM_TYPES, value=spec.type, layout=w.Layout(width="70px")),
            w.Text(
                value="" if spec.default is None else plain(spec.default),
                placeholder="default",
                layout=w.Layout(width="90px"),
            ),
            w.Text(
                value=spec.description, placeholder="description", layout=w.Layout(width="150px")
            ),
        )
        self.rows.append(row)
        self._render()

    def remove(self, index: int) -> None:
        del self.rows[index]
        self._render()

    def set(self, env: dict[str, ParamSpec]) -> None:
        self.rows = []
        for name, spec in env.items():
            self.add(name, spec)
        self._render()

    def value(self) -> dict[str, dict[str, Any]]:
        """The rows as the JSON of ``ImageSettings.env`` (the server checks the types)."""
        return {
            name.value.strip(): {
                "type": kind.value,
                "default": default.value.strip() or None,
                "description": description.value.strip(),
            }
            for name, kind, default, description in self.rows
            if name.value.strip()
        }

    def _render(self) -> None:
        lines: list[w.Widget] = []
        for index, row in enumerate(self.rows):
            remove = w.Button(icon="times", tooltip="remove", layout=w.Layout(width="32px"))
            remove.on_click(lambda _, i=index: self.remove(i))
            lines.append(w.HBox([*row, remove], layout=wrap()))
        self.children = [*lines, self.add_button]


class ApiParamRows(w.VBox):
    """Editable rows of the inference API's inputs: name, type, required, example, note."""

    def __init__(self) -> None:
        self.rows: list[tuple[w.Text, w.Dropdown, w.Checkbox, w.Text, w.Text]] = []
        self.add_button = w.Button(description="Add API input", icon="plus")
        self.add_button.on_click(lambda _: self.add())
        super().__init__([self.add_button])

    def add(
        self,
        name: str = "",
        kind: str = "string",
        required: bool = True,
        example: Any = None,
        description: str = "",
    ) -> None:
        row = (
            w.Text(value=name, placeholder="name", layout=w.Layout(width="100px")),
            w.Dropdown(options=API_TYPES, value=kind, layout=w.Layout(width="85px")),
            w.Checkbox(value=required, description="required", indent=False),
            w.Text(
                value="" if example is None else plain(example),
                placeholder="example",
                layout=w.Layout(width="100px"),
            ),
            w.Text(value=description, placeholder="description", layout=w.Layout(width="130px")),
        )
        row[2].layout.width = "80px"
        self.rows.append(row)
        self._render()

    def remove(self, index: int) -> None:
        del self.rows[index]
        self._render()

    def set(self, spec: ApiSpec | None) -> None:
        self.rows = []
        for p in spec.params if spec else []:
            self.add(p.name, p.type, p.required, p.example, p.description)
        self._render()

    def value(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name.value.strip(),
                "type": kind.value,
                "required": required.value,
                "example": _example(example.value),
                "description": description.value.strip(),
            }
            for name, kind, required, example, description in self.rows
            if name.value.strip()
        ]

    def _render(self) -> None:
        lines: list[w.Widget] = []
        for index, row in enumerate(self.rows):
            remove = w.Button(icon="times", tooltip="remove", layout=w.Layout(width="32px"))
            remove.on_click(lambda _, i=index: self.remove(i))
            lines.append(w.HBox([*row, remove], layout=wrap()))
        self.children = [*lines, self.add_button]


class ImageSettingsForm(w.VBox):
    """How one image runs: command, arguments, device, parameters (and the API spec)."""

    def __init__(self, kind: ImageKind) -> None:
        self.kind = kind
        self.command = w.Text(
            description="Command",
            placeholder="empty: the image's ENTRYPOINT",
            layout=w.Layout(width="420px"),
        )
        self.args = w.Text(
            description="Arguments",
            placeholder="empty: the image's CMD",
            layout=w.Layout(width="420px"),
        )
        self.device = w.ToggleButtons(options=["cpu", "gpu"], value="cpu", description="Device")
        self.params = ParamRows()
        self.route = w.Text(value="/predict", description="Route", layout=w.Layout(width="260px"))
        self.method = w.Dropdown(
            options=["POST", "GET"],
            value="POST",
            description="Method",
            layout=w.Layout(width="180px"),
        )
        self.api_params = ApiParamRows()
        children: list[w.Widget] = [
            self.command,
            self.args,
            self.device,
            w.HTML("Parameters (environment variables, with their type and default)"),
            self.params,
        ]
        if kind == ImageKind.PREDICT:
            children += [
                w.HTML("API (manual 2.2.1: the route and its inputs)"),
                w.HBox([self.method, self.route], layout=wrap()),
                self.api_params,
            ]
        super().__init__(children)

    def load(self, settings: ImageSettings) -> None:
        self.command.value = shlex.join(settings.command)
        self.args.value = shlex.join(settings.args)
        self.device.value = settings.device
        self.params.set(dict(settings.env))
        if self.kind == ImageKind.PREDICT:
            spec = settings.api_spec or ApiSpec()
            self.route.value, self.method.value = spec.route, spec.method
            self.api_params.set(spec)

    def clear(self) -> None:
        self.load(ImageSettings(api_spec=ApiSpec() if self.kind == ImageKind.PREDICT else None))

    def value(self) -> dict[str, Any]:
        """The JSON of :class:`ImageSettings`; ValueError for unbalanced quotes."""
        body: dict[str, Any] = {
            "command": shlex.split(self.command.value),
            "args": shlex.split(self.args.value),
            "env": self.params.value(),
            "device": self.device.value,
        }
        if self.kind == ImageKind.PREDICT:
            body["api_spec"] = {
                "route": self.route.value.strip(),
                "method": self.method.value,
                "params": self.api_params.value(),
            }
        return body


class AlgorithmForm(w.VBox):
    """The "new algorithm" form, also used to edit one (manual 2.2.1 and 2.2.2)."""

    def __init__(
        self,
        client: WorkbenchClient,
        on_saved: Callable[[AlgorithmInfo, bool], None],
        visibilities: list[Visibility],
    ) -> None:
        self.client = client
        self.on_saved = on_saved
        self.editing: int | None = None
        self.name = w.Text(description="Name")
        self.description = w.Textarea(description="Description", rows=2)
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.visibility = w.Dropdown(options=visibilities, description="Visibility")
        self.train = ImageSettingsForm(ImageKind.TRAIN)
        self.predict = ImageSettingsForm(ImageKind.PREDICT)
        self.image_tabs = w.Tab(
            children=[self.train, self.predict], titles=("Training image", "Inference image")
        )
        self.save_button = w.Button(description="Create", button_style="primary", icon="save")
        self.new_button = w.Button(description="New instead", layout=w.Layout(display="none"))
        self.message = Status()
        self.name.add_class("wb-algo-name")
        self.save_button.add_class("wb-algo-save")
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        self.save_button.on_click(lambda _: self.save())
        self.new_button.on_click(lambda _: self.reset())
        self._purpose_changed()
        self.predict.clear()
        super().__init__(
            [
                self.name,
                self.description,
                self.purpose,
                self.sub_purpose,
                self.visibility,
                self.image_tabs,
                w.HBox([self.save_button, self.new_button], layout=wrap()),
                self.message,
            ]
        )

    def _purpose_changed(self) -> None:
        offer_sub_purposes(self.purpose, self.sub_purpose)

    def load(self, algo: AlgorithmInfo) -> None:
        """Edit ``algo``: its values in the fields, Save sends the changes."""
        self.editing = algo.id
        self.name.value = algo.name
        self.description.value = algo.description
        self.purpose.value = algo.purpose
        self._purpose_changed()
        self.sub_purpose.value = algo.sub_purpose
        if algo.visibility in self.visibility.options:
            self.visibility.value = algo.visibility
        self.train.load(algo.train.settings)
        self.predict.load(algo.predict.settings)
        self.save_button.description = "Save"
        self.new_button.layout.display = ""
        self.message.value = ""

    def reset(self) -> None:
        self.editing = None
        self.name.value = self.description.value = ""
        self.train.clear()
        self.predict.clear()
        self.save_button.description = "Create"
        self.new_button.layout.display = "none"
        self.message.value = ""

    def save(self) -> None:
        try:
            fields: dict[str, Any] = {
                "name": self.name.value.strip(),
                "description": self.description.value,
                "purpose": self.purpose.value,
                "sub_purpose": self.sub_purpose.value,
                "visibility": self.visibility.value,
                "train": self.train.value(),
                "predict": self.predict.value(),
            }
        except ValueError as exc:
            self.message.problem(f"Command or arguments: {exc} (check the quotes).")
            return
        editing = self.editing
        algo = attempt(
            self.message,
            lambda: (
                self.client.algorithms.create(**fields)
                if editing is None
                else self.client.algorithms.update(editing, **fields)
            ),
        )
        if algo is FAILED:
            return
        created = self.editing is None
        self.message.ok(f"{'created' if created else 'saved'} {algo.name}")
        self.reset()
        self.on_saved(algo, created)


# --- HTML views ---------------------------------------------------------------------------


def summary_html(algo: AlgorithmInfo) -> str:
    facts = " · ".join(
        [
            f"{algo.purpose}/{algo.sub_purpose}",
            algo.visibility,
            f"owner {algo.owner}",
        ]
    )
    return (
        f"{heading_html(algo.name, algo.description)}"
        f"<div>state {state_html(algo.state)} · "
        f"<span style='color:var(--jp-ui-font-color2, #555)'>{escape(facts)}</span></div>"
    )


def settings_html(algo: AlgorithmInfo) -> str:
    """Both images: how they run, their parameters, the API spec, and where they stand."""
    parts = []
    for title, image in (("Training", algo.train), ("Inference", algo.predict)):
        s = image.settings
        command = f"<code>{escape(shlex.join(s.command))}</code>" if s.command else "its own"
        args = f"<code>{escape(shlex.join(s.args))}</code>" if s.args else "its own"
        run = f"command {command} · arguments {args} · {s.device.upper()}"
        params = (
            table_html(
                ["parameter", "type", "default", "description"],
                [
                    [
                        f"<code>{escape(name)}</code>",
                        spec.type,
                        escape("" if spec.default is None else plain(spec.default)),
                        escape(spec.description),
                    ]
                    for name, spec in s.env.items()
                ],
            )
            if s.env
            else "<div><i>no parameters</i></div>"
        )
        api = ""
        if s.api_spec is not None:
            api = f"<div>API <code>{s.api_spec.method} {escape(s.api_spec.route)}</code></div>"
            if s.api_spec.params:
                api += table_html(
                    ["input", "type", "required", "example", "description"],
                    [
                        [
                            f"<code>{escape(p.name)}</code>",
                            p.type,
                            "yes" if p.required else "no",
                            escape("" if p.example is None else plain(p.example)),
                            escape(p.description),
                        ]
                        for p in s.api_spec.params
                    ],
                )
        parts.append(
            f"<div style='margin-top:6px'><b>{title}</b> · {run}</div>{params}{api}"
            f"{image_html(image)}"
        )
    return "".join(parts)


def image_html(image: ImageInfo) -> str:
    """One image's state, reference, digest, size, source and config."""
    facts = [f"image {state_html(image.state)}"]
    if image.image_ref:
        facts.append(f"<code>{escape(image.image_ref)}</code>")
    if image.digest:
        facts.append(f"<code title='{escape(image.digest)}'>{escape(image.digest[:19])}</code>")
    if image.size:
        facts.append(size_text(image.size))
    if image.source:
        detail = f" {escape(image.source_detail)}" if image.source_detail else ""
        facts.append(f"from {escape(image.source)}{detail}")
    reason = (
        f"<div style='color:#b71c1c'>{escape(image.state_reason)}</div>"
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
        f"entrypoint <code>{escape(json.dumps(config.entrypoint))}</code> · "
        f"cmd <code>{escape(json.dumps(config.cmd))}</code>"
    ]
    if config.env:
        names = ", ".join(sorted(config.env))
        lines.append(f"env <code>{escape(names)}</code>")
    if config.exposed_ports:
        lines.append(f"exposed ports {', '.join(str(p) for p in config.exposed_ports)}")
    if config.workdir or config.user:
        lines.append(
            f"workdir <code>{escape(config.workdir or '/')}</code> · "
            f"user <code>{escape(config.user or 'root')}</code>"
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
    notes = "".join(f"<li style='color:#b71c1c'>{escape(p)}</li>" for p in report.problems)
    notes += "".join(f"<li style='color:#e65100'>{escape(n)}</li>" for n in report.warnings)
    facts = [
        ["naming", "ok" if report.naming_ok else "<b style='color:#b71c1c'>not kind-name.tar</b>"],
        ["tags", escape(", ".join(report.tags)) or "<i>none</i>"],
        ["digest", f"<code>{escape(report.digest)}</code>" if report.digest else ""],
        ["size", size_text(report.size)],
        ["layers", str(report.layers)],
    ]
    if report.config is not None:
        facts.append(["config", config_html(report.config)])
    return (
        f"<div style='margin-top:4px'><b>Validation report</b> of "
        f"<code>{escape(report.path)}</code></div>{verdict}"
        f"{f'<ul style=margin:2px>{notes}</ul>' if notes else ''}"
        f"{table_html(['', ''], facts, 'wb-tar-report')}"
    )


def _example(text: str) -> Any:
    """An API example as typed: JSON when it parses (3, true, ["a"]), else the text."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
