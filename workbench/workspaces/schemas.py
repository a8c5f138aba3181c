"""Request and response types of the workspace service and of its image builds
(:mod:`workbench.workspaces.builds`); also the REST API's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from workbench.enums import Purpose, SubPurpose
from workbench.schemas.common import Name
from workbench.schemas.images import ImageConfig

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class UploadSource(BaseModel):
    """Code comes later, as a zip uploaded to the workspace."""

    kind: Literal["upload"] = "upload"


class GitSource(BaseModel):
    kind: Literal["git"] = "git"
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    ref: Annotated[str, StringConstraints(max_length=255, pattern=r"^[\w./-]*$")] = ""


class SampleSource(BaseModel):
    """The sample project for the workspace's purpose."""

    kind: Literal["sample"] = "sample"


class ScaffoldSource(BaseModel):
    """A generated project: ``<prefix>-train`` and ``<prefix>-api`` with the given APIs."""

    kind: Literal["scaffold"] = "scaffold"
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
    api_names: list[Identifier] = Field(min_length=1, max_length=20)


CodeSource = Annotated[
    UploadSource | GitSource | SampleSource | ScaffoldSource, Field(discriminator="kind")
]


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0, le=256)
    memory_mb: int = Field(2048, ge=128, le=1024 * 1024)
    gpus: int = Field(0, ge=0, le=16)


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    purpose: Purpose
    sub_purpose: SubPurpose
    environment_id: int
    dataset_id: int | None = None
    project_id: int | None = None
    code: CodeSource = Field(default_factory=SampleSource)
    resources: Resources = Field(default_factory=Resources)


class WorkspaceInfo(BaseModel):
    id: int
    name: str
    owner: str
    members: list[str]
    #: invited, not members until they accept
    invited: list[str] = []
    purpose: Purpose
    sub_purpose: SubPurpose
    environment_id: int
    dataset_id: int | None
    project_id: int | None
    code: dict[str, object]
    resources: Resources
    state: str
    state_reason: str
    created_at: datetime
    updated_at: datetime


# --- image builds of a workspace's code -------------------------------------------------

BuildKind = Literal["train", "predict"]
#: the ``<name>`` of ``docker_image/<kind>-<name>.tar``; also part of the image's tag, so
#: lowercase letters and digits separated by one ``.``, ``_`` or ``__``, or by dashes
IMAGE_NAME = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$"
ImageName = Annotated[str, StringConstraints(max_length=64, pattern=IMAGE_NAME)]
ProjectPath = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class WorkspaceBuildRequest(BaseModel):
    """Build ``code/<project>/Dockerfile`` into ``docker_image/<kind>-<name>.tar``."""

    model_config = ConfigDict(extra="forbid")

    #: the project's folder under ``code/`` (e.g. ``text-classify-bayes-train-demo``)
    project: ProjectPath
    kind: BuildKind
    name: ImageName


class WorkspaceBuildStarted(BaseModel):
    """A build queued as a job: ``GET /jobs/<job_id>/log`` follows it."""

    job_id: int
    #: the tar it makes, relative to the workspace's root
    path: str


class ImageTarInfo(BaseModel):
    """A ``docker save`` tar in a workspace's ``docker_image/`` folder."""

    #: relative to the workspace's root, e.g. ``docker_image/train-bayes.tar``
    path: str
    filename: str
    #: ``train`` or ``predict`` from the name; None when it does not follow the naming
    kind: BuildKind | None
    #: the ``<name>`` of ``<kind>-<name>.tar``
    name: str | None
    size: int
    modified_at: datetime


class TarReport(BaseModel):
    """What publishing a tar of ``docker_image/`` as an algorithm's image would find."""

    #: relative to the workspace's root, e.g. ``docker_image/train-bayes.tar``
    path: str
    filename: str
    #: whether the name is ``<kind>-<name>.tar``, which publishing needs
    naming_ok: bool
    kind: BuildKind | None
    name: str | None
    #: the image's tags (``RepoTags``)
    tags: list[str] = Field(default_factory=list)
    #: ``sha256:<hex>`` of its config: the id the engine will give it
    digest: str = ""
    config: ImageConfig | None = None
    #: the tar's size in bytes
    size: int
    layers: int = 0
    #: what stops it from being published (empty: it can be)
    problems: list[str] = Field(default_factory=list)
    #: what to keep in mind (an image without a command needs the algorithm's)
    warnings: list[str] = Field(default_factory=list)
    ok: bool
