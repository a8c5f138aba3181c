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
from workbench.schemas.images import ImagePull
from workbench_ext.handlers.base import (
    API,
    Resource,
    UploadHandler,
    WorkbenchHandler,
    operation,
)

KIND = "(train|predict)"
#: the path parameters of one algorithm's routes, and of one of its images'
ALGORITHM = {"algorithm_id": int}
IMAGE = {"algorithm_id": int, "kind": str}


class AlgorithmHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:algorithms"


ALGORITHMS = Resource(
    "Algorithm", AlgorithmHandlerBase, lambda wb: wb.algorithms, ALGORITHM, AlgorithmInfo
)
AlgorithmsHandler, AlgorithmHandler = ALGORITHMS.standard(
    {
        "list": "Algorithms I can see: mine, public and preset",
        "create": "Register an algorithm (state draft): purpose, and how its train and predict "
        "images run",
        "get": "One algorithm with both images",
        "update": "Edit an algorithm (owner; admins for presets); run settings only while not "
        "online",
        "delete": "Delete an algorithm no training task, model version or service uses, and "
        "its images",
    },
    create=AlgorithmCreate,
    update=AlgorithmUpdate,
    filter=AlgorithmFilter,
    scopes={
        "list": scopes.READ_ALGORITHMS,
        "create": scopes.CREATE_ALGORITHMS,
        "get": scopes.READ_ALGORITHMS,
    },
)
PublishHandler = ALGORITHMS.action(
    "publish", "Put it online (needs a ready training image with a command)", AlgorithmInfo
)
OfflineHandler = ALGORITHMS.action(
    "take_offline", "Take it offline: new training tasks refuse it", AlgorithmInfo
)


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


#: POST {reference}: ``docker pull`` it as the image (Docker Engine backends; else 501)
PullHandler = ALGORITHMS.action(
    "pull_image",
    "docker pull an image as the train or predict image, in the background (a job; "
    "Docker Engine backends, 501 elsewhere)",
    AlgorithmInfo,
    202,
    request=ImagePull,
    path=IMAGE,
    spread=True,
    keywords={"wait": False},
)


class FromWorkspaceHandler(AlgorithmHandlerBase):
    """POST {workspace_id, filename}: load ``docker_image/<filename>`` of that workspace."""

    token_scopes = scopes.needs(POST=scopes.PUBLISH_ALGORITHM_IMAGES)

    def scope_target(self) -> int | None:
        """The workspace the tar comes from, for a workspace token (its own only)."""
        return self.parse(ImageFromWorkspace).workspace_id

    post = ALGORITHMS.call(
        "image_from_workspace",
        "Check docker_image/<kind>-<name>.tar of a workspace I own or am a member of, then "
        "load it as the image in the background (a job)",
        request=ImageFromWorkspace,
        response=AlgorithmInfo,
        status=202,
        path=IMAGE,
        spread=True,
        keywords={"wait": False},
    )


handlers = [
    (rf"{API}/algorithms", AlgorithmsHandler),
    (rf"{API}/algorithms/(\d+)", AlgorithmHandler),
    (rf"{API}/algorithms/(\d+)/publish", PublishHandler),
    (rf"{API}/algorithms/(\d+)/offline", OfflineHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}", ImageHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/pull", PullHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/from-workspace", FromWorkspaceHandler),
]
