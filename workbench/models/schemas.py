"""The REST bodies of models and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.enums import Visibility
from workbench.models.evaluation import Evaluation

#: an alias: a letter, then letters, digits, ``_``, ``-`` or ``.`` (``champion``, ``v2-rc``)
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
#: a tag's key; its value is any string up to 5000 characters
TAG_KEY_PATTERN = r"^[A-Za-z0-9_.: -]{1,128}$"


class ModelFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mine: bool = False
    visibility: Visibility | None = None
    #: found in the name or the description (case-insensitive)
    q: str | None = None
    #: the exact name
    name: str | None = None
    #: a tag the model or one of its versions has: ``key`` (any value) or ``key=value``
    tag: str | None = None
    purpose: str | None = None
    #: the framework of one of its versions (pytorch, tensorflow, sklearn, onnx)
    framework: str | None = None
    #: the owner's username
    owner: str | None = None


class ModelUpdate(BaseModel):
    """What the owner may change of a model; what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = None
    visibility: Visibility | None = None
    purpose: str | None = Field(default=None, max_length=32)


class VersionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None


class TagValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=5000)


class AliasTarget(BaseModel):
    """The version an alias points at, by its number in the model."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


class ModelVersionInfo(BaseModel):
    """A trained model's files and where they came from."""

    id: int
    model_id: int
    version: int
    #: lineage: the task and run that made it (task_id None once the task is deleted)
    task_id: int | None
    job_id: int | None
    algorithm_id: int | None
    dataset_id: int | None
    environment_id: int | None
    #: the parameters the run got (as environment variables)
    parameters: dict[str, Any]
    evaluation: Evaluation | None
    base_version_id: int | None
    #: sha256 of the sorted manifest of its files ("<sha256>  <path>" lines)
    sha256: str
    files: int
    size: int
    description: str = ""
    #: the native format's framework (pytorch, tensorflow, sklearn, onnx; "" unknown)
    framework: str = ""
    #: inputs and outputs (names, dtypes, shapes with -1 for a dynamic axis)
    signature: dict[str, Any] = {}
    tags: dict[str, str] = {}
    #: the model's aliases that point at this version
    aliases: list[str] = []
    created_at: datetime


class ModelInfo(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    visibility: Visibility
    project_id: int | None
    purpose: str = ""
    tags: dict[str, str] = {}
    #: alias -> version number
    aliases: dict[str, int] = {}
    latest_version: ModelVersionInfo | None
    created_at: datetime
    updated_at: datetime


class ModelDetail(ModelInfo):
    versions: list[ModelVersionInfo]


class NewVersion(BaseModel):
    """Where a new version comes from (its lineage): what registers it fills in what it
    knows."""

    task_id: int | None = None
    job_id: int | None = None
    algorithm_id: int | None = None
    dataset_id: int | None = None
    environment_id: int | None = None
    parameters: dict[str, Any] = {}
    evaluation: dict[str, Any] = {}
    base_version_id: int | None = None
    framework: str = ""
    signature: dict[str, Any] = {}
    description: str = ""


class VersionComparison(BaseModel):
    """Two or more versions side by side: each row one value per version, in their order
    (None where a version has none)."""

    versions: list[ModelVersionInfo]
    #: the model each version belongs to (versions of different models may be compared)
    models: list[str]
    parameters: dict[str, list[Any]]
    #: accuracy, macro precision/recall/F1 and the other scalar metrics of the evaluation
    metrics: dict[str, list[float | None]]
    #: parameter names whose values differ between the versions
    differing: list[str]
