"""The REST bodies of models and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from workbench.enums import Visibility
from workbench.models.evaluation import Evaluation


class ModelFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mine: bool = False
    visibility: Visibility | None = None
    q: str | None = None


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
    created_at: datetime


class ModelInfo(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    visibility: Visibility
    project_id: int | None
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
