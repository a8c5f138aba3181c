"""Request and response types of the dataset service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from workbench.datasets.types import Sample, Statistics, ValidationReport
from workbench.enums import (
    AnnotationType,
    DatasetFormat,
    DatasetState,
    Purpose,
    Split,
    SplitMode,
    SubPurpose,
    Visibility,
)

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/\\]+$")
]


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str = ""
    purpose: Purpose
    sub_purpose: SubPurpose
    #: defaults from the sub-purpose: label, position or entity
    annotation_type: AnnotationType | None = None
    format: DatasetFormat
    split_mode: SplitMode = SplitMode.RATIO
    train_ratio: float = Field(0.8, gt=0, lt=1)
    visibility: Visibility = Visibility.PRIVATE
    project_id: int | None = None


class DatasetUpdate(BaseModel):
    """Fields to change; the ones left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = None
    purpose: Purpose | None = None
    sub_purpose: SubPurpose | None = None
    annotation_type: AnnotationType | None = None
    format: DatasetFormat | None = None
    split_mode: SplitMode | None = None
    train_ratio: float | None = Field(None, gt=0, lt=1)
    visibility: Visibility | None = None
    project_id: int | None = None


class SplitInfo(BaseModel):
    split: Split
    archive_name: str
    archive_bytes: int
    sha256: str
    files: int
    unpacked_bytes: int
    uploaded_at: datetime
    report: ValidationReport
    statistics: Statistics


class DatasetInfo(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    visibility: Visibility
    purpose: Purpose
    sub_purpose: SubPurpose
    annotation_type: AnnotationType
    format: DatasetFormat
    split_mode: SplitMode
    train_ratio: float
    state: DatasetState
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    splits: dict[Split, SplitInfo] = Field(default_factory=dict)

    @property
    def statistics(self) -> Statistics | None:
        train = self.splits.get(Split.TRAIN)
        return train.statistics if train else None


class DatasetFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose | None = None
    sub_purpose: SubPurpose | None = None
    format: DatasetFormat | None = None
    state: DatasetState | None = None
    visibility: Visibility | None = None
    mine: bool = False
    q: str | None = None


class SamplePage(BaseModel):
    split: Split
    total: int
    offset: int
    samples: list[Sample]
