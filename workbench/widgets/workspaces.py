"""The Workspaces section of the side panel: create (environment, dataset, code source,
resources), start and stop with progress, open, members (invited, then members once they
accept) and delete; the invitations to you (teams' and workspaces'), to accept or
decline."""

from __future__ import annotations

import time
from collections.abc import Callable

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.enums import Purpose
from workbench.errors import WorkbenchError
from workbench.jobs.schemas import job_error
from workbench.jobs.states import JobState
from workbench.schemas.invitations import InvitationInfo
from workbench.widgets import common
from workbench.widgets.section import Section
from workbench.workspaces.schemas import WorkspaceInfo

READY_TIMEOUT_S = 120


class WorkspacesSection(Section[WorkspaceInfo]):
    area = "workspaces"
    list_rows = 5
    empty_hint = "New workspace, below, makes one from an environment."
    deletes = " and its files"

    # --- the parts ------------------------------------------------------------------------

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        self.form = CreateWorkspaceForm(self.client, self._created)
        return [("New workspace", self.form)]

    def build_details(self) -> w.VBox:
        return w.VBox([*self._build_workspace(), *self._build_image_build()])

    def build_header(self) -> list[w.Widget]:
        """The invitations to others' workspaces, above the list: Accept or Decline."""
        self.invitations = w.Dropdown(
            description="Invited", options=[], layout=w.Layout(width="360px")
        )
        self.accept_button = w.Button(description="Accept", icon="check", button_style="success")
        self.decline_button = w.Button(description="Decline", icon="times")
        self.accept_button.on_click(lambda _: self.answer(accept=True))
        self.decline_button.on_click(lambda _: self.answer(accept=False))
        self.invitation_status = common.Status()  # stays when the last invitation is answered
        self.invitations_box = w.HBox(
            [self.invitations, self.accept_button, self.decline_button], layout=common.wrap()
        )
        return [self.invitations_box, self.invitation_status]

    def _build_workspace(self) -> list[w.Widget]:
        """A workspace: its summary, Start, Stop, its link, Delete, and members invited."""
        self.summary = w.HTML()
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop")
        self.open_link = w.HTML()
        self.progress = common.progress_bar("Starting", "300px", hidden=True)
        self.member = w.Text(placeholder="username", layout=w.Layout(width="160px"))
        self.add_member_button = w.Button(description="Invite member", icon="user-plus")
        self.start_button.add_class("wb-ws-start")
        self.open_link.add_class("wb-ws-open")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.add_member_button.on_click(lambda _: self.add_member())
        #: what Start, Stop, Delete and the invitations answer, under their buttons; the
        #: build's own line is under its log
        self.action_status = common.Status()
        actions = [self.start_button, self.stop_button, self.open_link, self.delete_button]
        return [
            self.summary,
            w.HBox(actions, layout=common.wrap()),
            self.progress,
            self.action_status,
            w.HBox([self.member, self.add_member_button], layout=common.wrap()),
        ]

    def _build_image_build(self) -> list[w.Widget]:
        """Build code/<project>/Dockerfile into docker_image/<kind>-<name>.tar, its log."""
        self.build_project = w.Text(
            placeholder="project folder in code/", layout=w.Layout(width="180px")
        )
        self.build_kind = w.ToggleButtons(options=["train", "predict"], value="train")
        self.build_name = w.Text(placeholder="image name", layout=w.Layout(width="140px"))
        self.build_button = w.Button(description="Build image", icon="cubes")
        self.build_log = w.Textarea(rows=8, disabled=True, layout=w.Layout(width="100%"))
        self.build_button.on_click(lambda _: self.build())
        self.build_status = common.Status()
        return [
            w.HTML(
                "<b>Build</b> code/&lt;project&gt;/Dockerfile into "
                "docker_image/&lt;kind&gt;-&lt;name&gt;.tar"
            ),
            w.HBox(
                [self.build_project, self.build_kind, self.build_name, self.build_button],
                layout=common.wrap(),
            ),
            self.build_log,
            self.build_status,
        ]

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[WorkspaceInfo]:
        return self.client.workspaces.list()

    def label(self, ws: WorkspaceInfo) -> str:
        return f"#{ws.id} {ws.name} · {ws.state} · {ws.owner}"

    def render(self, ws: WorkspaceInfo) -> None:
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
        if ws.invited:
            members += f" · invited (not members until they accept) {', '.join(ws.invited)}"
        reason = (
            f"<div style='color:#b71c1c'>{common.escape(ws.state_reason)}</div>"
            if ws.state_reason
            else ""
        )
        self.summary.value = (
            f"{common.heading_html(ws.name)}"
            f"<div>{ws.purpose}/{ws.sub_purpose} · environment #{ws.environment_id} · "
            f"dataset {('#' + str(ws.dataset_id)) if ws.dataset_id else 'none'} · "
            f"{res.cpus:g} CPUs, {res.memory_mb} MiB, {res.gpus} GPUs</div>"
            f"<div>state <b>{ws.state}</b> · owner {ws.owner} · members {members}</div>"
            f"{reason}"
        )

    def load_choices(self) -> None:
        self.form.load_choices()
        self.load_invitations()

    def load_invitations(self) -> None:
        """The pending invitations to this user (to teams and workspaces), shown above the
        list only when there are some."""
        me = self.client.me().username
        mine = [i for i in self.client.invitations() if i.user == me]
        self.invitations.options = [(_invitation_label(i), i.id) for i in mine]
        self.invitations_box.layout.display = "" if mine else "none"

    # --- actions --------------------------------------------------------------------------

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
                    self.action_status.value = "JupyterLab is still starting; try Open in a moment."
                    break
                self.progress.value = min(95, self.progress.value + 5)
                time.sleep(1)
        except WorkbenchError as exc:
            self.progress.bar_style = "danger"
            self.refresh()
            self.action_status.error(exc)
            return
        self.progress.value, self.progress.bar_style = 100, "success"
        self.refresh()
        self.action_status.ok(f"{started.name} is running")

    def stop(self) -> None:
        if self.act(self.client.workspaces.stop, "stopped; its files are kept"):
            self.progress.layout.display = "none"

    def add_member(self) -> None:
        username = self.member.value.strip()

        def add(workspace_id: int) -> WorkspaceInfo:
            return self.client.workspaces.add_member(workspace_id, username)

        if username and self.act(add, f"invited {username}: a member once they accept"):
            self.member.value = ""

    def answer(self, *, accept: bool) -> None:
        """Accept or decline the chosen invitation; accepted, its workspace is listed."""
        invitation_id = self.invitations.value
        if invitation_id is None:
            return
        call = self.client.accept_invitation if accept else self.client.decline_invitation
        answered = common.attempt(self.invitation_status, lambda: call(invitation_id))
        if answered is common.FAILED:
            return
        self.refresh()
        self.invitation_status.ok(
            f"{answered.state} the invitation to {_invitation_label(answered)}"
        )

    def build(self) -> None:
        """Build on the server (a job), showing its log as it is written."""
        ws = self.selected
        if ws is None:
            return
        self.build_log.value = ""
        self.build_status.value = "building…"
        try:
            started = self.client.workspaces.build(
                ws.id,
                self.build_project.value.strip(),
                self.build_kind.value,
                self.build_name.value.strip(),
                wait=False,
            )
            for line in self.client.jobs.follow(started.job_id, interval=0.5):
                self.build_log.value += line + "\n"
            ended = self.client.jobs.get(started.job_id)
            if ended.state != JobState.SUCCEEDED:
                raise job_error(ended)
        except WorkbenchError as exc:
            self.build_status.error(exc)
            return
        self.build_status.ok(f"built {started.path}")

    def _created(self, ws: WorkspaceInfo) -> None:
        self.saved(ws, f"created {ws.name} (#{ws.id}); start it to open its JupyterLab")


def _invitation_label(invitation: InvitationInfo) -> str:
    return f"{invitation.kind} {invitation.name} from {invitation.inviter}"


class CreateWorkspaceForm(w.VBox):
    """The "new workspace" form (manual 2.6.1 and 2.6.2)."""

    def __init__(
        self, client: WorkbenchClient, on_created: Callable[[WorkspaceInfo], None]
    ) -> None:
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
        self.message = common.Status()
        self.source_fields = w.VBox()
        common.name_for_css(
            "ws",
            {
                "name": self.name,
                "environment": self.environment,
                "create": self.create_button,
            },
        )
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
        found = common.attempt(
            self.message,
            lambda: (
                [e for e in self.client.environments.list() if e.image_ref],
                self.client.datasets.list(state="online", purpose=self.purpose.value),
            ),
        )
        if found is common.FAILED:
            return
        envs, datasets = found
        self.environment.options = [(f"{e.name} ({e.framework})", e.id) for e in envs]
        self.dataset.options = [("none", None)] + [(f"#{d.id} {d.name}", d.id) for d in datasets]

    def _purpose_changed(self) -> None:
        common.offer_sub_purposes(self.purpose, self.sub_purpose)

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
        ws = common.attempt(
            self.message,
            lambda: self.client.workspaces.create(
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
            ),
        )
        if ws is common.FAILED:
            return
        self.message.ok(f"created {ws.name}")
        self.name.value = ""
        self.on_created(ws)
