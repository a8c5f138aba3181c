"""/workspaces/{id}/builds and /workspaces/{id}/images: build a project of a workspace's
``code/`` into ``docker_image/<kind>-<name>.tar`` (a job: 202, its log read like any job's),
list the tars, and check one before publishing it as an algorithm's image."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from workbench import scopes
from workbench.workspaces.builds import WorkspaceBuilds
from workbench.workspaces.schemas import (
    ImageTarInfo,
    TarReport,
    WorkspaceBuildRequest,
    WorkspaceBuildStarted,
)
from workbench_ext.handlers.base import API, WorkbenchHandler, operation


class BuildsHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @property
    def builds(self) -> WorkspaceBuilds:
        return self.workbench.builds


class WorkspaceBuildHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(POST=scopes.BUILD_WORKSPACE)

    @operation(
        "Build code/<project> into docker_image/<kind>-<name>.tar (owner, members), as a job "
        "(202): GET /jobs/<job_id>/log follows its log; 409 while the same tar is built",
        WorkspaceBuildRequest,
        WorkspaceBuildStarted,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        spec = self.parse(WorkspaceBuildRequest)
        started = await self.run(
            self.builds.build, self.actor, int(workspace_id), spec.project, spec.kind, spec.name
        )
        self.reply(started, status=202)


class WorkspaceImagesHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    @operation("The docker save tars in the workspace's docker_image/", response=list[ImageTarInfo])
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        self.reply(await self.run(self.builds.images, self.actor, int(workspace_id)))


class WorkspaceImageHandler(BuildsHandlerBase):
    """GET: what publishing ``docker_image/<filename>`` as an algorithm's image would find
    (naming, tags, config, digest, size, layers, problems), loading nothing."""

    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    @operation(
        "Check docker_image/<path> (a file name) as publishing it would: naming, tags, "
        "config, digest, size, layers, problems; nothing is loaded (owner, members)",
        response=TarReport,
    )
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str, filename: str) -> None:
        report = await self.run(self.builds.inspect_tar, self.actor, int(workspace_id), filename)
        self.reply(report)


handlers = [
    (rf"{API}/workspaces/(\d+)/builds", WorkspaceBuildHandler),
    (rf"{API}/workspaces/(\d+)/images", WorkspaceImagesHandler),
    # (.+), not ([^/]+): a name with a slash gets the service's "no paths" error, not a 404
    (rf"{API}/workspaces/(\d+)/images/(.+)", WorkspaceImageHandler),
]
