"""/workspaces: create, start, stop, delete, members, code upload and downloads."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from workbench import scopes
from workbench.workspaces.schemas import WorkspaceCreate, WorkspaceInfo
from workbench_ext.handlers.base import API, UploadHandler, WorkbenchHandler, operation
from workbench_ext.kernels import install_kernelspec, kernelspec_display_name, remove_kernelspec


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str


class WorkspacesHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @operation("Workspaces I own or am a member of", response=list[WorkspaceInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.workspaces.list, self.actor))

    @operation(
        "Create a workspace (folders and code; not started)", WorkspaceCreate, WorkspaceInfo, 201
    )
    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(WorkspaceCreate)
        self.reply(await self.run(self.workbench.workspaces.create, self.actor, spec), status=201)


class WorkspaceHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"
    token_scopes = scopes.needs(GET=scopes.READ_WORKSPACE)

    @operation("One workspace", response=WorkspaceInfo)
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        self.reply(await self.run(self.workbench.workspaces.get, self.actor, int(workspace_id)))

    @operation("Delete a workspace, its container and files (owner)", status=204)
    @web.authenticated
    @authorized
    async def delete(self, workspace_id: str) -> None:
        await self.run(self.workbench.workspaces.delete, self.actor, int(workspace_id))
        remove_kernelspec(int(workspace_id))
        self.set_status(204)
        self.finish()


class StartHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @operation("Start the workspace's container", response=WorkspaceInfo)
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        info = await self.run(self.workbench.workspaces.start, self.actor, int(workspace_id))
        # a notebook of this JupyterLab can now pick a kernel inside the workspace
        install_kernelspec(info.id, display_name=kernelspec_display_name(info.name, info.id))
        self.reply(info)


class StopHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @operation("Stop it; files are kept", response=WorkspaceInfo)
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        self.reply(await self.run(self.workbench.workspaces.stop, self.actor, int(workspace_id)))


class ReadyHandler(WorkbenchHandler):
    """Whether the workspace's JupyterLab answers yet (409 when it is not running)."""

    auth_resource = "workbench:workspaces"
    token_scopes = scopes.needs(GET=scopes.READ_WORKSPACE)

    @operation('Whether its JupyterLab answers yet: {"ready": bool}')
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        ready = await self.run(self.workbench.workspaces.ready, self.actor, int(workspace_id))
        self.reply({"ready": ready})


class DownloadHandler(WorkbenchHandler):
    """``code/`` or ``model/`` as a zip, streamed (owner and members)."""

    auth_resource = "workbench:workspaces"
    token_scopes = scopes.needs(GET=scopes.READ_WORKSPACE)

    @operation("code/ or model/ as a zip (owner and members)")
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str, name: str) -> None:
        self.workbench.store.path("tmp").mkdir(parents=True, exist_ok=True)
        path = await self.run(
            self.workbench.workspaces.zip_folder, self.actor, int(workspace_id), name
        )
        await self.send_zip(path, f"workspace-{workspace_id}-{name}.zip")


class MembersHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @operation("Invite a team member (owner); a member once they accept", MemberAdd, WorkspaceInfo)
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        spec = self.parse(MemberAdd)
        info = await self.run(
            self.workbench.workspaces.add_member, self.actor, int(workspace_id), spec.username
        )
        self.reply(info)


class MemberHandler(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @operation("Remove a member (owner)", response=WorkspaceInfo)
    @web.authenticated
    @authorized
    async def delete(self, workspace_id: str, username: str) -> None:
        info = await self.run(
            self.workbench.workspaces.remove_member, self.actor, int(workspace_id), username
        )
        self.reply(info)


class CodeHandler(UploadHandler):
    """PUT a zip or tar(.gz): it replaces the workspace's ``code/`` folder, all or nothing."""

    auth_resource = "workbench:workspaces"

    async def check_upload(self, workspace_id: str) -> None:
        await self.run(self.workbench.workspaces.check_owner, self.actor, int(workspace_id))

    @operation(
        "Replace code/ with a zip or tar(.gz) (owner)", response=WorkspaceInfo, body="archive"
    )
    @web.authenticated
    @authorized
    async def put(self, workspace_id: str) -> None:
        with self.received() as stored:
            info = await self.run(
                self.workbench.workspaces.upload_code, self.actor, int(workspace_id), stored
            )
        self.reply(info)


handlers = [
    (rf"{API}/workspaces", WorkspacesHandler),
    (rf"{API}/workspaces/(\d+)", WorkspaceHandler),
    (rf"{API}/workspaces/(\d+)/start", StartHandler),
    (rf"{API}/workspaces/(\d+)/stop", StopHandler),
    (rf"{API}/workspaces/(\d+)/ready", ReadyHandler),
    (rf"{API}/workspaces/(\d+)/download/(code|model)", DownloadHandler),
    (rf"{API}/workspaces/(\d+)/members", MembersHandler),
    (rf"{API}/workspaces/(\d+)/members/([a-z0-9][a-z0-9_.-]*)", MemberHandler),
    (rf"{API}/workspaces/(\d+)/code", CodeHandler),
]
