"""Workspaces (manual chapter 2.6): create from an environment with a dataset and a code
source, start, stop (files kept), delete, members, and reconciliation with the backend.

On disk a workspace is the store folder ``workspaces/<id>/`` holding ``code/``,
``docker_image/`` and ``model/`` (mounted read-write); the dataset's splits and the
contracts (``help_doc/``) are mounted read-only. A failed create leaves neither a row nor
a folder behind.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import get_visible
from workbench.backends.base import (
    MANAGED_LABEL,
    Limits,
    Mount,
    OnBackend,
    RunSpec,
    RunState,
)
from workbench.config import WorkspaceLimits
from workbench.datasets.archives import extract_archive
from workbench.datasets.types import ArchiveLimits
from workbench.enums import PublishState
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RunNotFound
from workbench.invitations import invite, invited
from workbench.networks import workspaces_network
from workbench.quotas import QuotaService
from workbench.registry.db import Registry
from workbench.registry.models import (
    Dataset,
    Environment,
    Project,
    TeamMember,
    User,
    Workspace,
    WorkspaceMember,
)
from workbench.schemas.common import from_row
from workbench.schemas.users import NewToken
from workbench.scopes import workspace_scope
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor, UserService, username_of
from workbench.workspaces import sources
from workbench.workspaces.schemas import (
    GitSource,
    Resources,
    SampleSource,
    ScaffoldSource,
    WorkspaceCreate,
    WorkspaceInfo,
)

HELP_DOC = Path(__file__).with_name("help_doc")
JUPYTER_PORT = 8888
RW_FOLDERS = ("code", "docker_image", "model")
CONTAINER_ROOT = "/workspace"
#: how a workspace starts where the image has no command of its own (the environment
#: images' start-jupyterlab does the same); the local backend passes the port as PORT_8888
JUPYTERLAB_COMMAND = (
    "sh",
    "-c",
    'exec jupyter lab --no-browser --ip=127.0.0.1 --port="${PORT_8888:-8888}" '
    '--ServerApp.base_url="$JUPYTER_BASE_URL" --ServerApp.root_dir=. '
    "--ServerApp.allow_root=True",
)
WORKSPACE_UID = 1000  # the `workbench` user of every environment image

#: the label of a workspace's container: the workspace's id
WORKSPACE_LABEL = "workbench.workspace"


class WorkspaceState:
    STOPPED = "stopped"  # created or stopped: files kept, no container running
    RUNNING = "running"
    FAILED = "failed"  # the container died or could not start: see state_reason


@dataclass(eq=False)
class WorkspaceService(OnBackend):
    """The workspaces: their rows, folders, containers and members.

    :param outbound: workspaces reach beyond this host (``WORKBENCH_WORKSPACE_OUTBOUND``);
        they never reach other runs, and always this server's API (``api_url``).
    :param quotas: a start is refused past its owner's memory quota.
    """

    registry: Registry
    store: ArtifactStore
    users: UserService
    _: KW_ONLY
    limits: WorkspaceLimits
    archive_limits: ArchiveLimits
    secret: Callable[[], bytes]
    api_url: str = ""
    proxy_prefix: str = "/workbench/proxy/workspaces/"
    allow_file_git_urls: bool = False
    #: the value of MANAGED_LABEL on this installation's containers (its home folder)
    instance: str = "true"
    #: whether workspaces reach beyond this host (``WORKBENCH_WORKSPACE_OUTBOUND``)
    outbound: bool = True
    quotas: QuotaService | None = None
    #: names the containers need to reach ``api_url`` (set with it by the server)
    extra_hosts: dict[str, str] = field(init=False, default_factory=dict)

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor) -> list[WorkspaceInfo]:
        with self.registry.session() as s:
            member_of = sa.select(WorkspaceMember.workspace_id).where(
                WorkspaceMember.user_id == actor.id
            )
            rows = s.scalars(
                sa.select(Workspace)
                .where(sa.or_(Workspace.owner_id == actor.id, Workspace.id.in_(member_of)))
                .order_by(Workspace.id.desc())
            ).all()
            return [self._info(s, row) for row in rows]

    def get(self, actor: Actor, workspace_id: int) -> WorkspaceInfo:
        with self.registry.session() as s:
            return self._info(s, self._get(s, actor, workspace_id))

    def folder(self, workspace_id: int) -> Path:
        return self.store.path(f"workspaces/{workspace_id}")

    def jupyter_token(self, workspace_id: int) -> str:
        """The token of the workspace's own JupyterLab; only the server's proxy knows it."""
        key = self.secret()
        return hmac.new(key, f"workspace:{workspace_id}".encode(), hashlib.sha256).hexdigest()

    def identity(self, workspace_id: int) -> str:
        """What tells this workspace from an earlier one that had its id (SQLite gives a new
        row the id of the newest one deleted): its id and creation time. For the server's
        proxy, after :meth:`endpoint` checked the caller."""
        with self.registry.session() as s:
            row = s.get(Workspace, workspace_id)
            if row is None:
                raise NotFound.entity("workspace", workspace_id)
            return f"{workspace_id}@{row.created_at.isoformat()}"

    def endpoint(self, actor: Actor, workspace_id: int) -> tuple[str, int]:
        """Where the workspace's JupyterLab listens on this machine: ``(host, port)``: the
        container's own address where it has one, else its port published on 127.0.0.1.

        For the server's proxy only (the port is never shown to users). Owner or member
        (:class:`NotFound` otherwise); :class:`Conflict` unless the workspace runs.
        """
        container_id = self._container(actor, workspace_id)
        try:
            info = self.backend.status(container_id)
        except RunNotFound:
            info = None
        where: tuple[str, int] | None = None
        if info is not None and info.state is RunState.RUNNING:
            port = info.ports.get(JUPYTER_PORT)
            # its address first: a network without outbound access publishes no port
            if info.address:
                where = info.address, JUPYTER_PORT
            elif port:
                where = "127.0.0.1", port
        if where is None:
            raise Conflict(
                f"Workspace {workspace_id}'s container is not running any more; start it "
                f"again (`workbench workspace start {workspace_id}`).",
                workspace=workspace_id,
                state=WorkspaceState.RUNNING,
            )
        return where

    def ready(self, actor: Actor, workspace_id: int) -> bool:
        """Whether the workspace's JupyterLab answers yet (``False`` while it boots)."""
        host, port = self.endpoint(actor, workspace_id)
        url = f"http://{host}:{port}{self.proxy_prefix}{workspace_id}/api/status"
        headers = {"Authorization": f"token {self.jupyter_token(workspace_id)}"}
        try:
            return httpx.get(url, headers=headers, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    # --- create ---------------------------------------------------------------------------

    def create(self, actor: Actor, spec: WorkspaceCreate) -> WorkspaceInfo:
        self._check_resources(spec.resources)
        with self.registry.session() as s:
            env = get_visible(s, Environment, spec.environment_id, actor, "environment")
            if not env.image_ref:
                raise Conflict(
                    f"Environment {env.id} ({env.name}) has no image yet; build or upload "
                    "its image first.",
                    environment=env.id,
                )
            if spec.dataset_id is not None:
                ds = get_visible(s, Dataset, spec.dataset_id, actor, "dataset")
                if ds.state is not PublishState.ONLINE:
                    raise Conflict(
                        f"Dataset {ds.id} ({ds.name}) is {ds.state}; only online datasets "
                        "can be mounted. Publish it first.",
                        dataset=ds.id,
                    )
            if spec.project_id is not None:
                get_visible(s, Project, spec.project_id, actor, "project")
            row = Workspace(
                owner_id=actor.id,
                **spec.model_dump(exclude={"code", "resources"}),
                code_source=spec.code.model_dump(),
                **spec.resources.model_dump(),
                state=WorkspaceState.STOPPED,
            )
            s.add(row)
            s.flush()
            workspace_id, base_image = row.id, env.image_ref
        try:
            self._make_folders(workspace_id, spec, base_image)
        except BaseException:
            shutil.rmtree(self.folder(workspace_id), ignore_errors=True)
            with self.registry.session() as s:
                s.execute(sa.delete(Workspace).where(Workspace.id == workspace_id))
            raise
        return self.get(actor, workspace_id)

    def _make_folders(self, workspace_id: int, spec: WorkspaceCreate, base_image: str) -> None:
        root = self.folder(workspace_id)
        root.mkdir(parents=True)
        for name in ("docker_image", "model"):
            (root / name).mkdir()
        code = root / "code"
        match spec.code:
            case GitSource() as git:
                sources.clone(git, code, allow_file=self.allow_file_git_urls)
            case ScaffoldSource() as scaffold:
                code.mkdir()
                sources.scaffold(scaffold, code, base_image=base_image)
            case SampleSource():
                code.mkdir()
                sources.sample(spec.purpose, spec.sub_purpose, code, base_image=base_image)
            case _:
                code.mkdir()
        _give_to_workspace_user(root)

    def zip_folder(self, actor: Actor, workspace_id: int, name: str) -> Path:
        """``code/`` or ``model/`` as a zip in the store's tmp folder; the caller deletes it.

        Links are not followed, so nothing outside the workspace's folder gets in.
        """
        if name not in ("code", "model"):
            raise InvalidInput(f"Only code/ and model/ can be downloaded, not {name!r}.")
        with self.registry.session() as s:
            self._get(s, actor, workspace_id)
        folder = self.folder(workspace_id) / name
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=self.store.path("tmp"))
        os.close(fd)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    zf.write(path, f"{name}/{path.relative_to(folder)}")
        return Path(tmp)

    def check_owner(self, actor: Actor, workspace_id: int) -> None:
        with self.registry.session() as s:
            self._get_owned(s, actor, workspace_id)

    def running_container(self, actor: Actor, workspace_id: int) -> str:
        """The backend id of a running workspace's container, to attach to it (a host
        notebook's kernel). Owner or member (:class:`NotFound` otherwise); :class:`Conflict`
        unless the registry says it runs."""
        return self._container(actor, workspace_id, then=", then start the kernel again")

    def upload_code(self, actor: Actor, workspace_id: int, archive: StoredFile) -> WorkspaceInfo:
        """Replace ``code/`` with the content of a zip or tar(.gz); all or nothing.

        The archive's folders become the projects of ``code/`` as they are (a zip of one
        project folder gives ``code/<project>/``). Refused while the workspace runs: its
        container keeps the folder it started with.
        """
        with self.registry.session() as s:
            row = self._get_owned(s, actor, workspace_id)
            if row.state == WorkspaceState.RUNNING:
                raise Conflict(
                    f"Workspace {workspace_id} is running; stop it before replacing its code "
                    "(or copy files in from its JupyterLab).",
                    workspace=workspace_id,
                )
        root = self.folder(workspace_id)
        with self.store.staging() as staging:
            extract_archive(archive.path, staging / "code", self.archive_limits)
            new = staging / "code"
            _give_to_workspace_user(new)
            old = staging / "old"
            os.rename(root / "code", old)
            os.rename(new, root / "code")
        return self.get(actor, workspace_id)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, actor: Actor, workspace_id: int) -> WorkspaceInfo:
        with self.registry.session() as s:
            row = self._get(s, actor, workspace_id)
            if row.state == WorkspaceState.RUNNING:
                return self._info(s, row)
            if self.quotas is not None:
                self.quotas.check_memory(s, row.owner_id, row.memory_mb, f"workspace {row.name}")
            spec = self._run_spec(s, row)
            container_id = row.container_id
            owner_id = row.owner_id
        token = self.users.replace_token(
            owner_id, f"workspace {workspace_id}", scope=workspace_scope(workspace_id)
        )
        spec = replace(spec, env={**spec.env, "WORKBENCH_TOKEN": token.secret})
        backend = self.backend
        try:
            if backend.inspect_image(spec.image).cmd is None:
                # an image without a command of its own (a venv on the local backend)
                spec = replace(spec, command=JUPYTERLAB_COMMAND)
            if container_id:
                backend.remove(container_id)  # a fresh container: new token, same files
            info = backend.run(spec)
        except Exception as exc:
            self._set_state(workspace_id, WorkspaceState.FAILED, f"could not start: {exc}", "")
            raise
        self._set_state(workspace_id, WorkspaceState.RUNNING, "", info.id)
        return self.get(actor, workspace_id)

    def stop(self, actor: Actor, workspace_id: int) -> WorkspaceInfo:
        with self.registry.session() as s:
            row = self._get(s, actor, workspace_id)
            container_id = row.container_id
        self.users.revoke_scoped(workspace_scope(workspace_id))  # the owner's and members'
        if container_id:
            try:
                self.backend.stop(container_id)
            except RunNotFound:
                container_id = ""
        self._set_state(workspace_id, WorkspaceState.STOPPED, "", container_id)
        return self.get(actor, workspace_id)

    def delete(self, actor: Actor, workspace_id: int) -> None:
        with self.registry.session() as s:
            row = self._get_owned(s, actor, workspace_id)
            container_id = row.container_id
        if container_id:
            self.backend.remove(container_id)
        self.users.revoke_scoped(workspace_scope(workspace_id))
        with self.registry.session() as s:
            s.execute(sa.delete(Workspace).where(Workspace.id == workspace_id))
        shutil.rmtree(self.folder(workspace_id), ignore_errors=True)

    def reconcile(self) -> list[int]:
        """Mark workspaces whose container died or vanished; return their ids."""
        with self.registry.session() as s:
            running = s.execute(
                sa.select(Workspace.id, Workspace.container_id).where(
                    Workspace.state == WorkspaceState.RUNNING
                )
            ).all()
        changed = []
        for workspace_id, container_id in running:
            try:
                info = self.backend.status(container_id)
            except RunNotFound:
                self._set_state(
                    workspace_id, WorkspaceState.FAILED, "its container is gone; start it again", ""
                )
                changed.append(workspace_id)
                continue
            if info.state is not RunState.RUNNING:
                tail = "\n".join(list(self.backend.logs(container_id, tail=20)))
                why = "killed: out of memory" if info.oom_killed else f"exit code {info.exit_code}"
                self._set_state(
                    workspace_id,
                    WorkspaceState.FAILED,
                    f"its container stopped ({why}); last logs:\n{tail}",
                    container_id,
                )
                changed.append(workspace_id)
        return changed

    # --- members --------------------------------------------------------------------------

    def add_member(self, actor: Actor, workspace_id: int, username: str) -> WorkspaceInfo:
        """Invite ``username``, who must share a team with the owner: a member once they
        accept (:mod:`workbench.invitations`), listed under ``invited`` until then."""
        with self.registry.session() as s:
            self._get_owned(s, actor, workspace_id)
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is None or not self._share_a_team(s, actor.id, user.id):
                raise NotFound(
                    f"{username!r} is not in any of your teams; add them to a team first "
                    "(`workbench team add`).",
                    kind="user",
                    id=username,
                )
            invite(s, user_id=user.id, inviter_id=actor.id, workspace_id=workspace_id)
        return self.get(actor, workspace_id)

    def remove_member(self, actor: Actor, workspace_id: int, username: str) -> WorkspaceInfo:
        """Remove a member and revoke their tokens of the workspace, and the container's
        own token (the owner's), which code the member ran in the shared container could
        read: the workspace's code gets a new one when the workspace is started again."""
        removed = None
        with self.registry.session() as s:
            self._get_owned(s, actor, workspace_id)
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is not None and s.get(WorkspaceMember, (workspace_id, user.id)):
                s.execute(
                    sa.delete(WorkspaceMember).where(
                        WorkspaceMember.workspace_id == workspace_id,
                        WorkspaceMember.user_id == user.id,
                    )
                )
                removed = user.id
        if removed is not None:
            self.users.revoke_scoped(workspace_scope(workspace_id), removed)
            self.users.revoke_named(actor.id, f"workspace {workspace_id}")
        return self.get(actor, workspace_id)

    def kernel_token(self, actor: Actor, workspace_id: int, kernel: str) -> NewToken:
        """A token for a kernel ``actor`` (owner or member) runs in the running workspace:
        the actor's own, of the workspace's scope, so the kernel's code acts as its user,
        never as the owner. Revoked with the kernel, when its user leaves the workspace or
        when the workspace stops."""
        self.running_container(actor, workspace_id)
        name = f"workspace {workspace_id} kernel {kernel}"
        return self.users.create_token(actor.id, name, scope=workspace_scope(workspace_id))

    # --- helpers --------------------------------------------------------------------------

    def _check_resources(self, res: Resources) -> None:
        over = [
            f"{name} {asked} > {allowed}"
            for name, asked, allowed in (
                ("cpus", res.cpus, self.limits.max_cpus),
                ("memory_mb", res.memory_mb, self.limits.max_memory_mb),
                ("gpus", res.gpus, self.limits.max_gpus),
            )
            if asked > allowed
        ]
        if over:
            raise InvalidInput(
                f"Resources above what an admin allows: {', '.join(over)}; ask for less.",
                field="resources",
                over=over,
            )

    def _get(self, s: Session, actor: Actor, workspace_id: int) -> Workspace:
        """Owner or member; everyone else gets 404 (workspaces are never public)."""
        row = s.get(Workspace, workspace_id)
        if row is None or not (
            row.owner_id == actor.id or s.get(WorkspaceMember, (workspace_id, actor.id))
        ):
            raise NotFound.entity("workspace", workspace_id)
        return row

    def _container(self, actor: Actor, workspace_id: int, *, then: str = "") -> str:
        """The backend id of the workspace's container, if the registry says it runs (owner
        or member); :class:`Conflict` otherwise, whose advice ends with ``then``."""
        with self.registry.session() as s:
            row = self._get(s, actor, workspace_id)
            state, container_id, name = row.state, row.container_id, row.name
        if state != WorkspaceState.RUNNING or not container_id:
            raise Conflict(
                f"Workspace {workspace_id} ({name}) is {state}; start it first "
                f"(`workbench workspace start {workspace_id}`){then}.",
                workspace=workspace_id,
                state=state,
            )
        return container_id

    def _get_owned(self, s: Session, actor: Actor, workspace_id: int) -> Workspace:
        row = self._get(s, actor, workspace_id)
        if row.owner_id != actor.id:
            raise PermissionDenied(f"Only the owner of workspace {workspace_id} can do this.")
        return row

    @staticmethod
    def _share_a_team(s: Session, a: int, b: int) -> bool:
        mine = sa.select(TeamMember.team_id).where(TeamMember.user_id == a)
        return bool(
            s.scalar(
                sa.select(sa.func.count()).where(
                    TeamMember.user_id == b, TeamMember.team_id.in_(mine)
                )
            )
        )

    def _set_state(self, workspace_id: int, state: str, reason: str, container_id: str) -> None:
        with self.registry.session() as s:
            row = s.get(Workspace, workspace_id)
            if row is not None:
                row.state, row.state_reason, row.container_id = state, reason, container_id

    def _run_spec(self, s: Session, row: Workspace) -> RunSpec:
        env = s.get(Environment, row.environment_id)
        assert env is not None
        root = self.folder(row.id)
        mounts = [Mount(root / name, f"{CONTAINER_ROOT}/{name}") for name in RW_FOLDERS]
        mounts.append(Mount(HELP_DOC, f"{CONTAINER_ROOT}/help_doc", read_only=True))
        if row.dataset_id is not None:
            ds = s.get(Dataset, row.dataset_id)
            for split in ds.splits if ds else ():
                mounts.append(
                    Mount(
                        self.store.path(split.storage_key),
                        f"{CONTAINER_ROOT}/dataset/{split.split}",
                        read_only=True,
                    )
                )
        return RunSpec(
            name=f"workbench-ws-{row.id}-{secrets.token_hex(3)}",
            image=env.image_ref,
            env={
                "JUPYTER_TOKEN": self.jupyter_token(row.id),
                "JUPYTER_BASE_URL": f"{self.proxy_prefix}{row.id}/",
                "WORKBENCH_URL": self.api_url,
                "WORKBENCH_WORKSPACE": str(row.id),
            },
            mounts=tuple(mounts),
            ports={JUPYTER_PORT: 0},
            limits=Limits(cpus=row.cpus, memory_mb=row.memory_mb, gpus=row.gpus),
            labels={MANAGED_LABEL: self.instance, WORKSPACE_LABEL: str(row.id)},
            extra_hosts=dict(self.extra_hosts),
            workdir=CONTAINER_ROOT,
            network=workspaces_network(self.outbound),
        )

    def _info(self, s: Session, row: Workspace) -> WorkspaceInfo:
        members = s.scalars(
            sa.select(User.username)
            .join(WorkspaceMember, WorkspaceMember.user_id == User.id)
            .where(WorkspaceMember.workspace_id == row.id)
            .order_by(User.username)
        ).all()
        return from_row(
            WorkspaceInfo,
            row,
            owner=username_of(s, row.owner_id),
            members=list(members),
            invited=invited(s, workspace_id=row.id),
            code=row.code_source,
            resources=Resources(cpus=row.cpus, memory_mb=row.memory_mb, gpus=row.gpus),
        )


def _give_to_workspace_user(root: Path) -> None:
    """Let the container's uid 1000 write its folders (possible when the server is root)."""
    if os.geteuid() != 0:
        return
    for path in (root, *root.rglob("*")):
        os.lchown(path, WORKSPACE_UID, WORKSPACE_UID)
