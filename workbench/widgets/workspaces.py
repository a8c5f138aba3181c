"""The Workspaces section of the side panel: create (environment, dataset, code source,
resources), start and stop with progress, open, members and delete."""

from __future__ import annotations

import time
from typing import Any

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.enums import SUB_PURPOSES, Purpose
from workbench.errors import WorkbenchError
from workbench.widgets.common import CONFIRM_DELETE, WRAP, Status, confirmed, escape
from workbench.workspaces.schemas import WorkspaceInfo

READY_TIMEOUT_S = 120


class WorkspacesSection(w.VBox):
    def __init__(self, client: WorkbenchClient, **kwargs: Any) -> None:
        self.client = client
        self.workspaces: dict[int, WorkspaceInfo] = {}
        self.status = Status()
        self.listing = w.Select(options=[], rows=5, layout=w.Layout(width="100%"))
        self.listing.add_class("wb-workspaces-list")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.listing.observe(lambda ch: self.show(ch["new"]), names="value")

        self.summary = w.HTML()
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop")
        self.open_link = w.HTML()
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.progress = w.IntProgress(
            value=0,
            min=0,
            max=100,
            description="Starting",
            layout=w.Layout(width="300px", display="none"),
        )
        self.member = w.Text(placeholder="username", layout=w.Layout(width="160px"))
        self.add_member_button = w.Button(description="Add member", icon="user-plus")
        self.build_project = w.Text(
            placeholder="project folder in code/", layout=w.Layout(width="180px")
        )
        self.build_kind = w.ToggleButtons(options=["train", "predict"], value="train")
        self.build_name = w.Text(placeholder="image name", layout=w.Layout(width="140px"))
        self.build_button = w.Button(description="Build image", icon="cubes")
        self.build_log = w.Textarea(rows=8, disabled=True, layout=w.Layout(width="100%"))
        self.build_button.on_click(lambda _: self.build())
        self.start_button.add_class("wb-ws-start")
        self.open_link.add_class("wb-ws-open")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.delete_button.on_click(lambda _: self.delete())
        self.add_member_button.on_click(lambda _: self.add_member())
        self.details = w.VBox(
            [
                self.summary,
                w.HBox(
                    [self.start_button, self.stop_button, self.open_link, self.delete_button],
                    layout=WRAP,
                ),
                self.progress,
                w.HBox([self.member, self.add_member_button], layout=WRAP),
                w.HTML(
                    "<b>Build</b> code/&lt;project&gt;/Dockerfile into "
                    "docker_image/&lt;kind&gt;-&lt;name&gt;.tar"
                ),
                w.HBox(
                    [self.build_project, self.build_kind, self.build_name, self.build_button],
                    layout=WRAP,
                ),
                self.build_log,
            ],
            layout=w.Layout(display="none"),
        )
        self.form = CreateWorkspaceForm(client, self._created)
        super().__init__(
            [
                self.refresh_button,
                self.listing,
                self.status,
                w.Accordion(children=[self.form], titles=("New workspace",), selected_index=None),
                self.details,
            ],
            **kwargs,
        )

    @property
    def selected(self) -> WorkspaceInfo | None:
        return self.workspaces.get(self.listing.value) if self.listing.value else None

    def refresh(self) -> None:
        try:
            found = self.client.workspaces.list()
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        keep = self.listing.value
        self.workspaces = {ws.id: ws for ws in found}
        self.listing.options = [
            (f"#{ws.id} {ws.name} · {ws.state} · {ws.owner}", ws.id) for ws in found
        ]
        self.listing.value = keep if keep in self.workspaces else None
        if keep in self.workspaces:
            self.show(keep)
        self.form.load_choices()

    def show(self, workspace_id: int | None) -> None:
        ws = self.workspaces.get(workspace_id) if workspace_id else None
        if ws is None:
            self.details.layout.display = "none"
            return
        self.details.layout.display = ""
        self.delete_button.description = "Delete"
        running = ws.state == "running"
        self.start_button.layout.display = "none" if running else ""
        self.stop_button.layout.display = "" if running else "none"
        url = f"{self.client.url}workbench/proxy/workspaces/{ws.id}/lab"
        self.open_link.value = (
            f"<a href='{url}' target='_blank' rel='noopener'>Open JupyterLab ↗</a>"
            if running
            else ""
        )
        res = ws.resources
        members = ", ".join(ws.members) or "none"
        reason = (
            f"<div style='color:#b71c1c'>{escape(ws.state_reason)}</div>" if ws.state_reason else ""
        )
        self.summary.value = (
            f"<h3 style='margin:4px 0'>{escape(ws.name)}</h3>"
            f"<div>{ws.purpose}/{ws.sub_purpose} · environment #{ws.environment_id} · "
            f"dataset {('#' + str(ws.dataset_id)) if ws.dataset_id else 'none'} · "
            f"{res.cpus:g} CPUs, {res.memory_mb} MiB, {res.gpus} GPUs</div>"
            f"<div>state <b>{ws.state}</b> · owner {ws.owner} · members {members}</div>"
            f"{reason}"
        )

    def start(self) -> None:
        ws = self.selected
        if ws is None:
            return
        self.progress.layout.display = ""
        self.progress.value, self.progress.bar_style = 10, ""
        try:
            started = self.client.workspaces.start(ws.id)
            self.progress.value = 50
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not self.client.workspaces.ready(ws.id):
                if time.monotonic() > deadline:
                    self.status.value = "JupyterLab is still starting; try Open in a moment."
                    break
                self.progress.value = min(95, self.progress.value + 5)
                time.sleep(1)
        except WorkbenchError as exc:
            self.progress.bar_style = "danger"
            self.status.error(exc)
            self.refresh()
            return
        self.progress.value, self.progress.bar_style = 100, "success"
        self.refresh()
        self.status.ok(f"{started.name} is running")

    def stop(self) -> None:
        ws = self.selected
        if ws is None:
            return
        try:
            self.client.workspaces.stop(ws.id)
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.progress.layout.display = "none"
        self.refresh()
        self.status.ok(f"{ws.name} stopped; its files are kept")

    def delete(self) -> None:
        ws = self.selected
        if ws is None:
            return
        question = f"Click '{CONFIRM_DELETE}' to delete {escape(ws.name)} and its files."
        if not confirmed(self.delete_button, self.status, question):
            return
        try:
            self.client.workspaces.delete(ws.id)
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.listing.value = None
        self.refresh()
        self.status.ok(f"deleted {ws.name}")

    def add_member(self) -> None:
        ws = self.selected
        if ws is None or not self.member.value.strip():
            return
        try:
            self.client.workspaces.add_member(ws.id, self.member.value.strip())
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.member.value = ""
        self.refresh()
        self.status.ok(f"added a member to {ws.name}")

    def build(self) -> None:
        """Build on the server, showing the log as it streams."""
        ws = self.selected
        if ws is None:
            return
        self.build_log.value = ""
        try:
            for line in self.client.workspaces.build(
                ws.id,
                self.build_project.value.strip(),
                self.build_kind.value,
                self.build_name.value.strip(),
            ):
                self.build_log.value += line + "\n"
        except WorkbenchError as exc:
            self.status.error(exc)
            return
        self.status.ok(f"built {self.build_log.value.strip().splitlines()[-1].removeprefix('OK ')}")

    def _created(self, ws: WorkspaceInfo) -> None:
        self.refresh()
        self.listing.value = ws.id
        self.status.ok(f"created {ws.name} (#{ws.id}); start it to open its JupyterLab")


class CreateWorkspaceForm(w.VBox):
    """The "new workspace" form (manual 2.6.1 and 2.6.2)."""

    def __init__(self, client: WorkbenchClient, on_created: Any) -> None:
        self.client = client
        self.on_created = on_created
        self.name = w.Text(description="Name")
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.environment = w.Dropdown(description="Environment")
        self.dataset = w.Dropdown(description="Dataset")
        self.code = w.ToggleButtons(
            options=["sample", "scaffold", "git", "upload"], value="sample", description="Code"
        )
        self.git_url = w.Text(description="Git URL", placeholder="https://host/repo.git")
        self.git_ref = w.Text(description="Ref", placeholder="main")
        self.prefix = w.Text(description="Prefix", placeholder="flowers")
        self.api_names = w.Text(description="APIs", placeholder="classify, health")
        self.cpus = w.BoundedFloatText(value=1.0, min=0.1, max=256, step=0.5, description="CPUs")
        self.memory = w.BoundedIntText(
            value=2048, min=128, max=1024 * 1024, step=256, description="Memory MiB"
        )
        self.gpus = w.BoundedIntText(value=0, min=0, max=16, description="GPUs")
        self.create_button = w.Button(description="Create", button_style="primary")
        self.message = Status()
        self.source_fields = w.VBox()
        for widget, name in (
            (self.name, "name"),
            (self.environment, "environment"),
            (self.create_button, "create"),
        ):
            widget.add_class(f"wb-ws-{name}")
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        self.code.observe(lambda _: self._code_changed(), names="value")
        self.create_button.on_click(lambda _: self.create())
        self._purpose_changed()
        self._code_changed()
        super().__init__(
            [
                self.name,
                self.purpose,
                self.sub_purpose,
                self.environment,
                self.dataset,
                self.code,
                self.source_fields,
                self.cpus,
                self.memory,
                self.gpus,
                self.create_button,
                self.message,
            ]
        )

    def load_choices(self) -> None:
        """Environments with an image, and online datasets of the chosen purpose."""
        try:
            envs = [e for e in self.client.environments.list() if e.image_ref]
            datasets = self.client.datasets.list(state="online", purpose=self.purpose.value)
        except WorkbenchError as exc:
            self.message.error(exc)
            return
        self.environment.options = [(f"{e.name} ({e.framework})", e.id) for e in envs]
        self.dataset.options = [("none", None)] + [(f"#{d.id} {d.name}", d.id) for d in datasets]

    def _purpose_changed(self) -> None:
        choices = list(SUB_PURPOSES[Purpose(self.purpose.value)])
        self.sub_purpose.options = choices
        self.sub_purpose.value = choices[0]

    def _code_changed(self) -> None:
        self.source_fields.children = {
            "git": (self.git_url, self.git_ref),
            "scaffold": (self.prefix, self.api_names),
        }.get(self.code.value, ())

    def code_source(self) -> dict[str, object]:
        if self.code.value == "git":
            return {
                "kind": "git",
                "url": self.git_url.value.strip(),
                "ref": self.git_ref.value.strip(),
            }
        if self.code.value == "scaffold":
            names = [n.strip() for n in self.api_names.value.split(",") if n.strip()]
            return {"kind": "scaffold", "prefix": self.prefix.value.strip(), "api_names": names}
        return {"kind": self.code.value}

    def create(self) -> None:
        if self.environment.value is None:
            self.message.value = "Choose an environment (an admin may need to build one)."
            return
        try:
            ws = self.client.workspaces.create(
                name=self.name.value.strip(),
                purpose=self.purpose.value,
                sub_purpose=self.sub_purpose.value,
                environment_id=self.environment.value,
                dataset_id=self.dataset.value,
                code=self.code_source(),
                resources={
                    "cpus": self.cpus.value,
                    "memory_mb": self.memory.value,
                    "gpus": self.gpus.value,
                },
            )
        except WorkbenchError as exc:
            self.message.error(exc)
            return
        self.message.ok(f"created {ws.name}")
        self.name.value = ""
        self.on_created(ws)
