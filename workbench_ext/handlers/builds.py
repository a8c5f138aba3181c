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
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.resource import Resource
from workbench_ext.handlers.workspaces import WORKSPACE


class BuildsHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:workspaces"


BUILDS = Resource("Workspace", BuildsHandlerBase, "builds", WORKSPACE, read=scopes.BUILD_WORKSPACE)
WorkspaceBuildHandler = BUILDS.action(
    "build",
    "Build code/<project> into docker_image/<kind>-<name>.tar (owner, members), as a job "
    "(202): GET /jobs/<job_id>/log follows its log; 409 while the same tar is built",
    WorkspaceBuildStarted,
    202,
    scope=scopes.BUILD_WORKSPACE,
    request=WorkspaceBuildRequest,
    spread=True,
)
WorkspaceImagesHandler = BUILDS.view(
    "images", "The docker save tars in the workspace's docker_image/", list[ImageTarInfo]
)
#: GET: what publishing ``docker_image/<filename>`` as an algorithm's image would find
#: (naming, tags, config, digest, size, layers, problems), loading nothing
WorkspaceInspectTarHandler = BUILDS.view(
    "inspect_tar",
    "Check docker_image/<path> (a file name) as publishing it would: naming, tags, "
    "config, digest, size, layers, problems; nothing is loaded (owner, members)",
    TarReport,
    path={"workspace_id": int, "filename": str},
)


handlers = [
    (rf"{API}/workspaces/(\d+)/builds", WorkspaceBuildHandler),
    (rf"{API}/workspaces/(\d+)/images", WorkspaceImagesHandler),
    # (.+), not ([^/]+): a name with a slash gets the service's "no paths" error, not a 404
    (rf"{API}/workspaces/(\d+)/images/(.+)", WorkspaceInspectTarHandler),
]
