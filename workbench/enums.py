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


class PublishState(StrEnum):
    """A dataset's or an algorithm's: draft -> online <-> offline. Only online ones start
    training tasks, and workspaces mount online datasets only."""

    DRAFT = "draft"
    ONLINE = "online"
    OFFLINE = "offline"


class ImageKind(StrEnum):
    """An algorithm's two images; also the prefix of their tars in ``docker_image/``."""

    TRAIN = "train"
    PREDICT = "predict"


class ImageState(StrEnum):
    """missing -> loading -> ready | failed (an algorithm image's upload, pull or publish)."""

    MISSING = "missing"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class TaskState(StrEnum):
    """A training task: draft -> queued -> running -> succeeded | failed | stopped; a
    finished task is started again (retry) as a new run."""

    DRAFT = "draft"  # saved, never started
    QUEUED = "queued"  # waiting for a slot (concurrency, CPU, memory)
    RUNNING = "running"  # its container runs
    SUCCEEDED = "succeeded"  # a model version was registered
    FAILED = "failed"  # see state_reason and the log
    STOPPED = "stopped"  # stopped by a user


#: the states a task stays in until something ends it
ACTIVE_TASK_STATES = (TaskState.QUEUED, TaskState.RUNNING)
#: the states a task ends in (it may be edited and retried from them)
FINISHED_TASK_STATES = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.STOPPED)
#: a task that may still run: a draft, or active (its dataset cannot be deleted)
UNFINISHED_TASK_STATES = (TaskState.DRAFT, *ACTIVE_TASK_STATES)
