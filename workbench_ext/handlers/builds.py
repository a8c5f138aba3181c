"""/workspaces/{id}/builds and /workspaces/{id}/images: build a project of a workspace's
``code/`` into ``docker_image/<kind>-<name>.tar`` (a job: 202, its log read like any job's),
list the tars, and check one before publishing it as an algorithm's image."""

from __future__ import annotations

from workbench import scopes
from workbench.workspaces.schemas import (
    ImageTarInfo,
    TarReport,
    WorkspaceBuildRequest,
    WorkspaceBuildStarted,
)
from workbench_ext.handlers.base import API, WorkbenchHandler, service_call
from workbench_ext.handlers.workspaces import WORKSPACE


class BuildsHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:workspaces"


class WorkspaceBuildHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(POST=scopes.BUILD_WORKSPACE)

    post = service_call(
        "Build code/<project> into docker_image/<kind>-<name>.tar (owner, members), as a job "
        "(202): GET /jobs/<job_id>/log follows its log; 409 while the same tar is built",
        lambda wb: wb.builds.build,
        WorkspaceBuildRequest,
        WorkspaceBuildStarted,
        202,
        path=WORKSPACE,
        spread=True,
    )


class WorkspaceImagesHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    get = service_call(
        "The docker save tars in the workspace's docker_image/",
        lambda wb: wb.builds.images,
        response=list[ImageTarInfo],
        path=WORKSPACE,
    )


class WorkspaceImageHandler(BuildsHandlerBase):
    """GET: what publishing ``docker_image/<filename>`` as an algorithm's image would find
    (naming, tags, config, digest, size, layers, problems), loading nothing."""

    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    get = service_call(
        "Check docker_image/<path> (a file name) as publishing it would: naming, tags, "
        "config, digest, size, layers, problems; nothing is loaded (owner, members)",
        lambda wb: wb.builds.inspect_tar,
        response=TarReport,
        path={"workspace_id": int, "filename": str},
    )


handlers = [
    (rf"{API}/workspaces/(\d+)/builds", WorkspaceBuildHandler),
    (rf"{API}/workspaces/(\d+)/images", WorkspaceImagesHandler),
    # (.+), not ([^/]+): a name with a slash gets the service's "no paths" error, not a 404
    (rf"{API}/workspaces/(\d+)/images/(.+)", WorkspaceImageHandler),
]
