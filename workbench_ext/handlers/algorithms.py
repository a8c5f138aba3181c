"""/algorithms: the algorithm library, publishing and taking offline, and the images:
uploads of ``docker save`` tars (streamed to disk), pulls, and tars of a workspace's
``docker_image/``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from workbench import scopes
from workbench.algorithms.schemas import (
    AlgorithmCreate,
    AlgorithmFilter,
    AlgorithmInfo,
    AlgorithmUpdate,
    ImageFromWorkspace,
)
from workbench.schemas.images import ImagePull
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.resource import Resource, Schemas, Strict

KIND = "(train|predict)"
#: the path parameters of one algorithm's routes
ALGORITHM = {"algorithm_id": int}
#: how each way of giving an algorithm an image is called: on one of its images (its
#: ``kind``), the request's fields as keywords, loaded in the background (202: a job, the
#: image's ``job_id``)
LOAD: dict[str, Any] = {
    "response": AlgorithmInfo,
    "status": 202,
    "path": {"algorithm_id": int, "kind": str},
    "spread": True,
    "keywords": {"wait": False},
}


class AlgorithmHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:algorithms"


ALGORITHMS = Resource(
    "Algorithm", AlgorithmHandlerBase, "algorithms", ALGORITHM, read=scopes.READ_ALGORITHMS
)
AlgorithmsHandler, AlgorithmHandler = ALGORITHMS.standard(
    Schemas(AlgorithmInfo, AlgorithmCreate, AlgorithmUpdate, AlgorithmFilter),
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
    grants={"create": scopes.CREATE_ALGORITHMS},
)
AlgorithmPublishHandler = ALGORITHMS.action(
    "publish", "Put it online (needs a ready training image with a command)", AlgorithmInfo
)
AlgorithmTakeOfflineHandler = ALGORITHMS.action(
    "take_offline", "Take it offline: new training tasks refuse it", AlgorithmInfo
)


class UploadQuery(Strict):
    #: the uploaded file's name, kept as the image's source (its first 255 characters)
    filename: Annotated[str, AfterValidator(lambda name: name[:255])] = ""


#: PUT the raw bytes of a ``docker save`` tar: checked, then loaded as the image
AlgorithmUploadImageHandler = ALGORITHMS.upload(
    "upload_image",
    "Upload a docker save tar as the train or predict image: checked (manifest, config, "
    "layers, a tag, size, a command), then loaded and tagged workbench/algo-<id>-<kind> "
    "in the background (a job: the image's `job_id`; state loading)",
    query=UploadQuery,
    **LOAD,
)
#: POST {reference}: ``docker pull`` it as the image (Docker Engine backends; else 501)
AlgorithmPullImageHandler = ALGORITHMS.action(
    "pull_image",
    "docker pull an image as the train or predict image, in the background (a job; "
    "Docker Engine backends, 501 elsewhere)",
    request=ImagePull,
    **LOAD,
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
        **LOAD,
    )


handlers = [
    (rf"{API}/algorithms", AlgorithmsHandler),
    (rf"{API}/algorithms/(\d+)", AlgorithmHandler),
    (rf"{API}/algorithms/(\d+)/publish", AlgorithmPublishHandler),
    (rf"{API}/algorithms/(\d+)/offline", AlgorithmTakeOfflineHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}", AlgorithmUploadImageHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/pull", AlgorithmPullImageHandler),
    (rf"{API}/algorithms/(\d+)/images/{KIND}/from-workspace", FromWorkspaceHandler),
]
