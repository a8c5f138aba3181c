"""/workspaces: create, start, stop, delete, members, code upload and downloads."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from workbench import scopes
from workbench.workspaces.schemas import WorkspaceCreate, WorkspaceInfo
from workbench_ext.handlers.base import API, WorkbenchHandler, operation
from workbench_ext.handlers.resource import Resource, Schemas, Strict
from workbench_ext.kernels import install_kernelspec, kernelspec_display_name, remove_kernelspec

#: the path parameter of one workspace's routes
WORKSPACE = {"workspace_id": int}


class MemberAdd(Strict):
    username: str


class WorkspaceHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:workspaces"


WORKSPACES = Resource(
    "Workspace", WorkspaceHandlerBase, "workspaces", WORKSPACE, read=scopes.READ_WORKSPACE
)
WorkspacesHandler, _ = WORKSPACES.standard(
    Schemas(WorkspaceInfo, WorkspaceCreate),
    {
        "list": "Workspaces I own or am a member of",
        "create": "Create a workspace (folders and code; not started)",
    },
)


class WorkspaceHandler(WorkspaceHandlerBase):
    token_scopes = scopes.needs(GET=WORKSPACES.read)

    get = WORKSPACES.call("get", "One workspace", response=WorkspaceInfo, path=WORKSPACE)

    @operation("Delete a workspace, its container and files (owner)", status=204)
    @web.authenticated
    @authorized
    async def delete(self, workspace_id: str) -> None:
        await self.run(self.workbench.workspaces.delete, self.actor, int(workspace_id))
        remove_kernelspec(int(workspace_id))
        self.set_status(204)
        self.finish()


class StartHandler(WorkspaceHandlerBase):
    @operation("Start the workspace's container", response=WorkspaceInfo)
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        info = await self.run(self.workbench.workspaces.start, self.actor, int(workspace_id))
        # a notebook of this JupyterLab can now pick a kernel inside the workspace
        install_kernelspec(info.id, display_name=kernelspec_display_name(info.name, info.id))
        self.reply(info)


WorkspaceStopHandler = WORKSPACES.action("stop", "Stop it; files are kept", WorkspaceInfo)


class ReadyHandler(WorkspaceHandlerBase):
    """Whether the workspace's JupyterLab answers yet (409 when it is not running)."""

    token_scopes = scopes.needs(GET=WORKSPACES.read)

    @operation('Whether its JupyterLab answers yet: {"ready": bool}')
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        ready = await self.run(self.workbench.workspaces.ready, self.actor, int(workspace_id))
        self.reply({"ready": ready})


class DownloadHandler(WorkspaceHandlerBase):
    """``code/`` or ``model/`` as a zip, streamed (owner and members)."""

    token_scopes = scopes.needs(GET=WORKSPACES.read)

    @operation("code/ or model/ as a zip (owner and members)")
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str, name: str) -> None:
        self.workbench.store.path("tmp").mkdir(parents=True, exist_ok=True)
        path = await self.run(
            self.workbench.workspaces.zip_folder, self.actor, int(workspace_id), name
        )
        await self.send_zip(path, f"workspace-{workspace_id}-{name}.zip")


WorkspaceAddMemberHandler = WORKSPACES.action(
    "add_member",
    "Invite a team member (owner); a member once they accept",
    WorkspaceInfo,
    request=MemberAdd,
    spread=True,
)
WorkspaceRemoveMemberHandler = WORKSPACES.action(
    "remove_member",
    "Remove a member (owner)",
    WorkspaceInfo,
    http="delete",
    path={"workspace_id": int, "username": str},
)


#: PUT a zip or tar(.gz): it replaces the workspace's ``code/`` folder, all or nothing
WorkspaceUploadCodeHandler = WORKSPACES.upload(
    "upload_code",
    "Replace code/ with a zip or tar(.gz) (owner)",
    WorkspaceInfo,
    check="check_owner",
)


handlers = [
    (rf"{API}/workspaces", WorkspacesHandler),
    (rf"{API}/workspaces/(\d+)", WorkspaceHandler),
    (rf"{API}/workspaces/(\d+)/start", StartHandler),
    (rf"{API}/workspaces/(\d+)/stop", WorkspaceStopHandler),
    (rf"{API}/workspaces/(\d+)/ready", ReadyHandler),
    (rf"{API}/workspaces/(\d+)/download/(code|model)", DownloadHandler),
    (rf"{API}/workspaces/(\d+)/members", WorkspaceAddMemberHandler),
    (rf"{API}/workspaces/(\d+)/members/([a-z0-9][a-z0-9_.-]*)", WorkspaceRemoveMemberHandler),
    (rf"{API}/workspaces/(\d+)/code", WorkspaceUploadCodeHandler),
]
