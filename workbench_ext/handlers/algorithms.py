"""/algorithms: the algorithm library, publishing and taking offline, and the images:
uploads of ``docker save`` tars (streamed to disk), pulls, and tars of a workspace's
``docker_image/``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from workbench import scopes
from workbench.algorithms.schemas import (
    AlgorithmCreate,
    AlgorithmFilter,
    AlgorithmInfo,
    AlgorithmUpdate,
    ImageFromWorkspace,
)
from workbench.algorithms.service import AlgorithmService
from workbench.schemas.images import ImagePull
from workbench_ext.handlers.base import API, UploadHandler, WorkbenchHandler, operation

KIND = "(train|predict)"


class AlgorithmHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:algorithms"

    @property
    def algorithms(self) -> AlgorithmService:
        return self.workbench.algorithms


class AlgorithmsHandler(AlgorithmHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_ALGORITHMS, POST=scopes.CREATE_ALGORITHMS)

    @operation(
        "Algorithms I can see: mine, public and preset",
        response=list[AlgorithmInfo],
        query=("visibility", "purpose", "sub_purpose", "state", "q"),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(AlgorithmFilter)
        self.reply(await self.run(self.algorithms.list, self.actor, filters))

    @operation(
        "Register an algorithm (state draft): purpose, and how its train and predict images run",
        AlgorithmCreate,
        AlgorithmInfo,
        201,
    )
    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(AlgorithmCreate)
        self.reply(await self.run(self.algorithms.create, self.actor, spec), status=201)


class AlgorithmHandler(AlgorithmHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_ALGORITHMS)

    @operation("One algorithm with both images", response=AlgorithmInfo)
    @web.authenticated
    @authorized
    async def get(self, algorithm_id: str) -> None:
        self.reply(await self.run(self.algorithms.get, self.actor, int(algorithm_id)))

    @operation(
        "Edit an algorithm (owner; admins for presets); run settings only while not online",
        AlgorithmUpdate,
        AlgorithmInfo,
    )
    @web.authenticated
    @authorized
    async def patch(self, algorithm_id: str) -> None:
        changes = self.parse(AlgorithmUpdate)
        self.reply(await self.run(self.algorithms.update, self.actor, int(algorithm_id), changes))

    @operation(
        "Delete an algorithm no training task, model version or service uses, and its images",
        status=204,
    )
    @web.authenticated
    @authorized
    async def delete(self, algorithm_id: str) -> None:
        await self.run(self.algorithms.delete, self.actor, int(algorithm_id))
        self.set_status(204)
        self.finish()


class PublishHandler(AlgorithmHandlerBase):
    @operation(
        "Put it online (needs a ready training image with a command)", response=AlgorithmInfo
    )
    @web.authenticated
    @authorized
    async def post(self, algorithm_id: str) -> None:
        self.reply(await self.run(self.algorithms.publish, self.actor, int(algorithm_id)))


class OfflineHandler(AlgorithmHandlerBase):
    @operation("Take it offline: new training tasks refuse it", response=AlgorithmInfo)
    @web.authenticated
    @authorized
    async def post(self, algorithm_id: str) -> None:
        self.reply(await self.run(self.algorithms.take_offline, self.actor, int(algorithm_id)))


class UploadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the uploaded file's name, kept as the image's source
    filename: str = ""


class ImageHandler(UploadHandler):
    """PUT the raw bytes of a ``docker save`` tar: checked, then loaded as the image."""

    auth_resource = "workbench:algorithms"

    async def check_upload(self, algorithm_id: str, kind: str) -> None:
        await self.run(self.workbench.algorithms.check_upload, self.actor, int(algorithm_id), kind)

    @operation(
        "Upload a docker save tar as the train or predict image: checked (manifest, config, "
        "layers, a tag, size, a command), then loaded and tagged workbench/algo-<id>-<kind> "
        "in the background (a job: the image's `job_id`; state loading)",
        response=AlgorithmInfo,
        status=202,
        query=("filename",),
        body="archive",
    )
    @web.authenticated
    @authorized
    async def put(self, algorithm_id: str, kind: str) -> None:
        filename = self.query(UploadQuery).filename[:255]
        with self.received() as stored:
            info = await self.run(
                self.workbench.algorithms.upload_image,
                self.actor,
                int(algorithm_id),
                kind,
                stored,
                filename,
                wait=False,
            )
        self.reply(info, status=202)


class PullHandler(AlgorithmHandlerBase):
    """POST {reference}: ``docker pull`` it as the image (Docker Engine backends; else 501)."""

    @operation(
        "docker pull an image as the train or predict image, in the background (a job; "
        "Docker Engine backends, 501 elsewhere)",
        ImagePull,
        AlgorithmInfo,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self, algorithm_id: str, kind: str) -> None:
        spec = self.parse(ImagePull)
        info = await self.run(
            self.algorithms.pull_image,
            self.actor,
            int(algorithm_id),
            kind,
            spec.reference,
            wait=False,
        )
        self.reply(info, status=202)


class FromWorkspaceHandler(AlgorithmHandlerBase):
    """POST {workspace_id, filename}: load ``docker_image/<filename>`` of that workspace."""

    token_scopes = scopes.needs(POST=scopes.PUBLISH_ALGORITHM_IMAGES)

    def scope_target(self) -> int | None:
        """The workspace the tar comes from, for a workspace token (its own only)."""
        return self.parse(ImageFromWorkspace).workspace_id

    @operation(
        "Check docker_image/<kind>-<name>.tar of a workspace I own or am a member of, then "
        "load it as the image in the background (a job)",
        ImageFromWorkspace,
        AlgorithmInfo,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self, algorithm_id: str, kind: str) -> None:
        spec = self.parse(ImageFromWorkspace)
        info = await self.run(
            self.algorithms.image_from_workspace,
            self.actor,
            int(algorithm_id),
            kind,
            spec.workspace_id,
            spec.filename,
            wait=False,
        )
        self.reply(info, status=202)


handlers = [
    (rf"{API}/algorithms", AlgorithmsHandler),
    (rf"{API}/algorithms/(\d+)", AlgorithmHandler),
    (rf"{API}/algorithms/(\d+)/publish", PublishHandler),
    (rf"{API}/algorithms/(\d+)/offline", OfflineHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}", ImageHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/pull", PullHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/from-workspace", FromWorkspaceHandler),
]
