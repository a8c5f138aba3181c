"""The kinds of dataset there are (purpose, sub-purpose, format: :func:`check_kind`) and
the value types of the dataset inspection: the validation report, statistics and samples.

They are stored as JSON in the registry and sent as-is by the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from workbench.enums import SUB_PURPOSES, AnnotationType, DatasetFormat, Purpose, SubPurpose
from workbench.errors import InvalidInput

#: Compatible (purpose, sub-purpose) -> formats. The format standard is in docs/datasets.md.
FORMATS_FOR: dict[tuple[Purpose, SubPurpose], tuple[DatasetFormat, ...]] = {
    (Purpose.IMAGE, SubPurpose.CLASSIFICATION): (DatasetFormat.DIR,),
    (Purpose.IMAGE, SubPurpose.OBJECT_DETECTION): (DatasetFormat.JSON,),
    (Purpose.IMAGE, SubPurpose.SEMANTIC_SEGMENTATION): (DatasetFormat.JSON,),
    (Purpose.TEXT, SubPurpose.CLASSIFICATION): (DatasetFormat.DIR, DatasetFormat.SINGLE_TEXT),
    (Purpose.TEXT, SubPurpose.NER): (DatasetFormat.BRAT_ANN,),
}

#: the annotation type of a dataset whose create body names none, by sub-purpose
DEFAULT_ANNOTATION = {
    SubPurpose.CLASSIFICATION: AnnotationType.LABEL,
    SubPurpose.OBJECT_DETECTION: AnnotationType.POSITION,
    SubPurpose.SEMANTIC_SEGMENTATION: AnnotationType.POSITION,
    SubPurpose.NER: AnnotationType.ENTITY,
}


def check_kind(purpose: Purpose, sub_purpose: SubPurpose, fmt: DatasetFormat) -> None:
    """Refuse purpose / sub-purpose / format combinations that no standard covers."""
    if sub_purpose not in SUB_PURPOSES[purpose]:
        allowed = ", ".join(SUB_PURPOSES[purpose])
        raise InvalidInput(
            f"Sub-purpose {sub_purpose} does not belong to purpose {purpose}; "
            f"choose one of: {allowed}.",
            field="sub_purpose",
        )
    formats = FORMATS_FOR[(purpose, sub_purpose)]
    if fmt not in formats:
        raise InvalidInput(
            f"Format {fmt} is not a format for {purpose} {sub_purpose} datasets; "
            f"use {' or '.join(formats)} (see docs/datasets.md).",
            field="format",
        )


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied while unpacking an uploaded archive (zip bombs, floods of files).

    ``max_ratio`` is the total uncompressed size divided by the archive's size.
    """

    max_archive_bytes: int = 4 * 1024**3
    max_total_bytes: int = 16 * 1024**3
    max_files: int = 200_000
    max_ratio: float = 200.0

    def __post_init__(self) -> None:
        for name in ("max_archive_bytes", "max_total_bytes", "max_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ArchiveLimits.{name} must be positive")
        if self.max_ratio < 1:
            raise ValueError("ArchiveLimits.max_ratio must be at least 1")


class FileIssue(BaseModel):
    path: str  # relative to the split's root, "/"-separated
    message: str


class ValidationReport(BaseModel):
    """Per-file outcome of checking one split against its format's standard."""

    format: DatasetFormat
    ok: bool
    files_checked: int
    errors: list[FileIssue] = Field(default_factory=list)
    warnings: list[FileIssue] = Field(default_factory=list)
    #: errors beyond the ones listed (the list is capped so a report stays small)
    errors_truncated: int = 0


class NumericSummary(BaseModel):
    min: float
    max: float
    mean: float


class Statistics(BaseModel):
    samples: int
    classes: list[str]
    class_counts: dict[str, int]
    #: image datasets: "WxH" -> count
    image_sizes: dict[str, int] | None = None
    #: text datasets: length in characters
    text_lengths: NumericSummary | None = None
    #: detection / NER: number of boxes or entities
    annotations: int | None = None


class Sample(BaseModel):
    """One sample for preview. ``path`` can be fetched raw through the samples route."""

    path: str
    label: str | None = None
    kind: str  # "image" | "text"
    text: str | None = None  # the first characters of a text sample
    boxes: list[dict[str, object]] | None = None  # detection: {"label", "bbox": [x, y, w, h]}
    entities: list[dict[str, object]] | None = None  # NER: {"label", "start", "end", "text"}


class Inspection(BaseModel):
    report: ValidationReport
    statistics: Statistics | None  # None when the report has errors
