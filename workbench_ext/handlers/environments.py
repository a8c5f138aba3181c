"""/environments: the environment registry, image builds (in the background), uploads of
``docker save`` tars (streamed to disk), pulls, and the build log."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from workbench import scopes
from workbench.environments.schemas import (
    EnvironmentCreate,
    EnvironmentFilter,
    EnvironmentInfo,
    EnvironmentUpdate,
)
from workbench.schemas.images import ImagePull
from workbench_ext.handlers.base import API, WorkbenchHandler, operation
from workbench_ext.handlers.resource import Resource, Schemas

#: the path parameter of one environment's routes
ENV = {"env_id": int}


class EnvironmentHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:environments"


ENVIRONMENTS = Resource(
    "Environment", EnvironmentHandlerBase, "environments", ENV, read=scopes.READ_ENVIRONMENTS
)
EnvironmentsHandler, EnvironmentHandler = ENVIRONMENTS.standard(
    Schemas(EnvironmentInfo, EnvironmentCreate, EnvironmentUpdate, EnvironmentFilter),
    {
        "list": "Environments I can see: mine, public and preset",
        "create": "Create an environment (state draft)",
        "get": "One environment",
        "update": "Edit an environment (owner; admins for presets)",
        "delete": "Delete an environment no workspace uses",
    },
)


class BuildHandler(EnvironmentHandlerBase):
    """POST starts the build in the background and answers 202 (state "building"); follow
    it with GET .../log and GET .../{id} until the state is ready or failed."""

    @operation(
        "Start building its image from its definition, in the background (state building)",
        response=EnvironmentInfo,
        status=202,
    )
    @web.authenticated
    @authorized
    async def post(self, env_id: str) -> None:
        info = await self.run(self.workbench.environments.start_build, self.actor, int(env_id))
        self.set_header("Location", f"{self.base_url.rstrip('/')}{API}/environments/{env_id}/log")
        self.reply(info, status=202)


#: PUT the raw bytes of a ``docker save`` tar: checked here, then loaded as the image in
#: the background (202, with the job's id)
EnvironmentUploadImageHandler = ENVIRONMENTS.upload(
    "upload_image",
    "Upload a docker save tar as its image: checked (manifest, configs, layers, a tag), "
    "then loaded in the background (a job: `job_id`; state building)",
    EnvironmentInfo,
    202,
    keywords={"wait": False},
)
#: POST {reference}: ``docker pull`` it as the image (Docker Engine backends; else 501)
EnvironmentPullHandler = ENVIRONMENTS.action(
    "pull",
    "docker pull an image as its image, in the background (a job: `job_id`; Docker "
    "Engine backends, 501 elsewhere)",
    EnvironmentInfo,
    202,
    request=ImagePull,
    spread=True,
    keywords={"wait": False},
)
#: POST: register one preset environment per ``envs/`` definition (admins)
EnvironmentSyncPresetsHandler = ENVIRONMENTS.action(
    "sync_presets",
    "Register one preset environment per envs/ definition (admins; idempotent)",
    list[EnvironmentInfo],
    path=None,
)


handlers = [
    (rf"{API}/environments", EnvironmentsHandler),
    (rf"{API}/environments/presets", EnvironmentSyncPresetsHandler),
    (rf"{API}/environments/(\d+)", EnvironmentHandler),
    (rf"{API}/environments/(\d+)/build", BuildHandler),
    (rf"{API}/environments/(\d+)/image", EnvironmentUploadImageHandler),
    (rf"{API}/environments/(\d+)/pull", EnvironmentPullHandler),
]
