"""Enumerations stored in the registry and sent over the REST API (values are the wire form)."""

from __future__ import annotations

from enum import StrEnum


class Visibility(StrEnum):
    PRIVATE = "private"  # the owner only
    PUBLIC = "public"  # every user may see and use it
    PRESET = "preset"  # curated by an admin, visible to all; only admins may set it


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Purpose(StrEnum):
    """First-level purpose of a dataset, algorithm, workspace or task."""

    IMAGE = "image"
    TEXT = "text"


class SubPurpose(StrEnum):
    """Second-level purpose; each belongs to one :class:`Purpose` (see ``SUB_PURPOSES``)."""

    CLASSIFICATION = "classification"
    OBJECT_DETECTION = "object_detection"
    SEMANTIC_SEGMENTATION = "semantic_segmentation"
    NER = "ner"


SUB_PURPOSES: dict[Purpose, tuple[SubPurpose, ...]] = {
    Purpose.IMAGE: (
        SubPurpose.CLASSIFICATION,
        SubPurpose.OBJECT_DETECTION,
        SubPurpose.SEMANTIC_SEGMENTATION,
    ),
    Purpose.TEXT: (SubPurpose.CLASSIFICATION, SubPurpose.NER),
}


class AnnotationType(StrEnum):
    LABEL = "label"  # one class per sample
    POSITION = "position"  # boxes or regions (detection, segmentation)
    ENTITY = "entity"  # spans in text
    NONE = "none"  # unlabelled


class DatasetFormat(StrEnum):
    DIR = "dir"  # <class>/<sample files>
    JSON = "json"  # COCO-style detection: annotations.json + images/
    SINGLE_TEXT = "single_text"  # one UTF-8 file, a "<label>\t<text>" line per sample
    BRAT_ANN = "brat_ann"  # brat standoff: <doc>.txt + <doc>.ann


class SplitMode(StrEnum):
    RATIO = "ratio"  # only a train archive; tasks split it by a ratio
    INDEPENDENT = "independent"  # a train and a separate test archive


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"


class DatasetState(StrEnum):
    DRAFT = "draft"
    ONLINE = "online"
    OFFLINE = "offline"
