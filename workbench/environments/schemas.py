"""Request and response types of the environment service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from workbench.enums import Visibility

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/\\]+$")
]
#: a framework's short name, as the definitions spell it: python, pytorch, tensorflow, keras...
Framework = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$")]
Version = Annotated[str, StringConstraints(max_length=32, pattern=r"^[\w.+-]*$")]
Device = Literal["cpu", "gpu"]
#: the name of a folder of ``envs/`` (a preset definition)
DefinitionName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class EnvironmentState(StrEnum):
    """draft -> building -> ready | failed; an upload or a pull also ends in ready."""

    DRAFT = "draft"  # no image yet
    BUILDING = "building"  # a build, an image load or a pull is running
    READY = "ready"  # ``image_ref`` names a usable image
    FAILED = "failed"  # the last build failed: see ``state_reason`` and the log


class EnvironmentCreate(BaseModel):
    """A new environment. With a ``definition``, framework, version and device default to
    the definition's and, when given, must agree with it."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str = ""
    framework: Framework | None = None
    framework_version: Version | None = None
    device: Device | None = None
    definition: DefinitionName | None = None
    visibility: Visibility = Visibility.PRIVATE


class EnvironmentUpdate(BaseModel):
    """Fields to change; the ones left out stay as they are. ``definition`` may be set to
    ``""`` to detach the environment from its definition (its image then comes only from
    uploads or pulls)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = None
    framework: Framework | None = None
    framework_version: Version | None = None
    device: Device | None = None
    definition: DefinitionName | Literal[""] | None = None
    visibility: Visibility | None = None


class EnvironmentFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: only mine
    mine: bool = False
    #: private, public or preset (the manual's "my / public / preset" tabs)
    visibility: Visibility | None = None
    framework: str | None = None
    device: Device | None = None
    state: EnvironmentState | None = None
    #: words in the name or the description
    q: str | None = None


class EnvironmentInfo(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    visibility: Visibility
    framework: str
    framework_version: str
    device: Device
    definition: str
    image_ref: str
    image_id: str
    state: EnvironmentState
    #: why the last build failed (empty unless ``state`` is failed)
    state_reason: str = ""
    #: the latest build, upload or pull (a job: ``GET /jobs/<id>`` has its progress,
    #: ``GET /jobs/<id>/log`` its log)
    job_id: int | None = None
    created_at: datetime
    updated_at: datetime
