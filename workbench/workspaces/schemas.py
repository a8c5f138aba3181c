"""Request and response types of the workspace service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from workbench.enums import Purpose, SubPurpose

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/\\]+$")
]
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
