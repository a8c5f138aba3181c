"""Request and response types of the algorithm library (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from workbench.algorithms.params import ImageSettings
from workbench.enums import ImageState, PublishState, Purpose, SubPurpose, Visibility
from workbench.schemas.common import PurposedCreate, PurposedInfo, PurposedUpdate
from workbench.schemas.images import ImageConfig

#: a file of a workspace's ``docker_image/`` folder (a name, never a path)
TarName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class AlgorithmCreate(PurposedCreate):
    """A new algorithm (state draft): what it is for, and how its two images run."""

    train: ImageSettings = Field(default_factory=ImageSettings)
    predict: ImageSettings = Field(default_factory=ImageSettings)


class AlgorithmUpdate(PurposedUpdate):
    """Fields to change; the ones left out stay as they are. ``train`` and ``predict``
    replace the settings of that image whole."""

    train: ImageSettings | None = None
    predict: ImageSettings | None = None


class AlgorithmFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "mine" (the manual's "my algorithms"), or private, public, preset
    visibility: Literal["mine"] | Visibility | None = None
    purpose: Purpose | None = None
    sub_purpose: SubPurpose | None = None
    state: PublishState | None = None
    #: words in the name or the description
    q: str | None = None


class ImageInfo(BaseModel):
    """One of an algorithm's images: how it runs, and the image itself once loaded."""

    settings: ImageSettings
    state: ImageState
    #: why the last load failed (empty unless ``state`` is failed)
    state_reason: str = ""
    #: ``workbench/algo-<id>-<kind>:<12 hex of the digest>``: what runs
    image_ref: str = ""
    #: ``sha256:<hex>`` of the image's config (its id)
    digest: str = ""
    #: "upload", "pull" or "workspace"
    source: str = ""
    #: the uploaded file's name, the pulled reference, or ``workspace <id>: <file>``
    source_detail: str = ""
    #: the image's own config (None before the first load)
    config: ImageConfig | None = None
    #: the tags the image came with (the tar's, or the pulled reference)
    tags: list[str] = Field(default_factory=list)
    #: bytes (the tar's size, or the engine's size of a pulled image)
    size: int = 0
    #: the latest load (a job: ``GET /jobs/<id>`` has its progress and log)
    job_id: int | None = None
    updated_at: datetime | None = None


class AlgorithmInfo(PurposedInfo):
    state: PublishState
    #: the environment of the workspace its images were published from (lineage)
    environment_id: int | None
    train: ImageInfo
    predict: ImageInfo
    created_at: datetime
    updated_at: datetime


class ImageFromWorkspace(BaseModel):
    """Publish ``docker_image/<filename>`` of a workspace (owner or member) as the image."""

    model_config = ConfigDict(extra="forbid")

    workspace_id: int
    #: ``<kind>-<name>.tar`` in the workspace's ``docker_image/`` folder
    filename: TarName
