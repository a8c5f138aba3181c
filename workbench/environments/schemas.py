"""Request and response types of the environment service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import StringConstraints

from workbench.schemas.common import (
    ShareableCreate,
    ShareableFilter,
    ShareableInfo,
    ShareableUpdate,
)

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


class EnvironmentCreate(ShareableCreate):
    """A new environment. With a ``definition``, framework, version and device default to
    the definition's and, when given, must agree with it."""

    framework: Framework | None = None
    framework_version: Version | None = None
    device: Device | None = None
    definition: DefinitionName | None = None


class EnvironmentUpdate(ShareableUpdate):
    """Fields to change; the ones left out stay as they are. ``definition`` may be set to
    ``""`` to detach the environment from its definition (its image then comes only from
    uploads or pulls)."""

    framework: Framework | None = None
    framework_version: Version | None = None
    device: Device | None = None
    definition: DefinitionName | Literal[""] | None = None


class EnvironmentFilter(ShareableFilter):
    framework: str | None = None
    device: Device | None = None
    state: EnvironmentState | None = None


class EnvironmentInfo(ShareableInfo):
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
