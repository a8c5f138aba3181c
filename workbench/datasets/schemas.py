"""Request and response types of the dataset service (also the REST API's bodies)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from workbench.datasets.types import Sample, Statistics, ValidationReport
from workbench.enums import (
    AnnotationType,
    DatasetFormat,
    PublishState,
    Split,
    SplitMode,
)
from workbench.schemas.common import (
    PurposedCreate,
    PurposedFilter,
    PurposedInfo,
    PurposedUpdate,
)


class DatasetCreate(PurposedCreate):
    #: defaults from the sub-purpose: label, position or entity
    annotation_type: AnnotationType | None = None
    format: DatasetFormat
    split_mode: SplitMode = SplitMode.RATIO
    train_ratio: float = Field(0.8, gt=0, lt=1)
    project_id: int | None = None


class DatasetUpdate(PurposedUpdate):
    annotation_type: AnnotationType | None = None
    format: DatasetFormat | None = None
    split_mode: SplitMode | None = None
    train_ratio: float | None = Field(None, gt=0, lt=1)
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


class DatasetInfo(PurposedInfo):
    annotation_type: AnnotationType
    format: DatasetFormat
    split_mode: SplitMode
    train_ratio: float
    state: PublishState
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    splits: dict[Split, SplitInfo] = Field(default_factory=dict)

    @property
    def statistics(self) -> Statistics | None:
        train = self.splits.get(Split.TRAIN)
        return train.statistics if train else None


class DatasetFilter(PurposedFilter):
    format: DatasetFormat | None = None
    state: PublishState | None = None


class SamplePage(BaseModel):
    split: Split
    total: int
    offset: int
    samples: list[Sample]
