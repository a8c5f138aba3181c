"""The REST bodies of models and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.enums import Visibility
from workbench.models.evaluation import Evaluation
from workbench.schemas.common import ShareableFilter, ShareableInfo

#: an alias: a letter, then letters, digits, ``_``, ``-`` or ``.`` (``champion``, ``v2-rc``)
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
#: a tag's key; its value is any string up to 5000 characters
TAG_KEY_PATTERN = r"^[A-Za-z0-9_.: -]{1,128}$"


class ModelFilter(ShareableFilter):
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
    #: inputs and outputs (a model registered without ``signature.json``); checked
    signature: dict[str, Any] | None = None


class TagValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=5000)


class AliasTarget(BaseModel):
    """The version an alias points at, by its number in the model."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


class FormatInfo(BaseModel):
    """A deployment format of a version: converting, verified (offered for serving) or
    failed, with the conversion's numeric check against the native model."""

    format: str
    state: str
    message: str
    #: max_abs_error, max_rel_error, error_to_range, top1_agreement, atol, rtol,
    #: range_tol, samples, seconds
    check: dict[str, Any]
    file: str
    size: int
    job_id: int | None
    updated_at: datetime


class ConversionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the formats to make (each also needs the ones it is made from); default: every
    #: format the version's native kind converts to
    formats: list[str] | None = None


class ConversionStarted(BaseModel):
    """A conversion queued as a job (``GET /jobs/<job_id>`` follows it)."""

    job_id: int
    formats: list[FormatInfo]


class ModelImport(BaseModel):
    """A model trained elsewhere, imported as a new version (the file is the request's
    body): of the model ``model_id`` (the actor's), else of the actor's model called
    ``name`` (made when there is none)."""

    model_config = ConfigDict(extra="forbid")

    #: what the file is: a key of ``workbench.models.formats.IMPORT_KINDS``
    kind: str
    #: the uploaded file's name: *.zip, *.tar, *.tar.gz, *.tgz are unpacked (a state dict
    #: with its code, a SavedModel folder, or a model file with samples.npz beside it)
    filename: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    model_id: int | None = None
    #: the model file inside an archive (found by its suffix when it is the only one)
    file: str = Field(default="", max_length=255)
    #: a state dict's module class, ``module:Class`` (kind ``pytorch``)
    entry: str = Field(default="", max_length=255)
    #: inputs (and outputs): needed where the file does not record them (TorchScript, a
    #: state dict); else it is read from the file
    signature: dict[str, Any] = {}
    #: the environment whose image checks, converts and serves it (default: a ready one of
    #: the kind's framework)
    environment_id: int | None = None
    description: str = Field(default="", max_length=4000)
    visibility: Visibility = Visibility.PRIVATE
    purpose: str = Field(default="", max_length=32)


class ImportStarted(BaseModel):
    """An import queued as a job: ``GET /jobs/<job_id>`` follows it; when it succeeds its
    result names the model and the version."""

    job_id: int
    environment_id: int


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
    #: its converted formats (see :class:`FormatInfo`)
    formats: list[FormatInfo] = []
    #: what a service serves by default (``formats.choose_default``: the fastest exact
    #: format at batch size 1; INT8 only beyond noise with no held-out accuracy lost)
    default_format: str = ""
    #: an imported version's source: ``import`` (its kind), ``file``, ``sha256`` and the
    #: ``warnings`` its import gave
    source: dict[str, Any] = {}
    created_at: datetime


class ModelInfo(ShareableInfo):
    project_id: int | None
    purpose: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    #: alias -> version number
    aliases: dict[str, int] = Field(default_factory=dict)
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
    source: dict[str, Any] = {}


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
    #: format -> its state for each version (None: not converted)
    formats: dict[str, list[str | None]] = {}
    #: format -> p50 latency (ms) at batch size 1 for each version, on its newest machine
    latency_ms: dict[str, list[float | None]] = {}
    #: format -> the highest throughput (samples/s) measured for each version
    throughput: dict[str, list[float | None]] = {}


class BenchmarkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the verified formats to measure beside the native model (default: all of them)
    formats: list[str] | None = None
    #: batch sizes 1, 2, 4, ... up to this
    max_batch: int = Field(default=32, ge=1, le=1024)
    #: seconds of one measuring window (a point takes 3 or more, after a warm-up)
    window_s: float = Field(default=0.5, ge=0.05, le=10)
    #: seconds a point may take before it is recorded as not stable
    point_cap_s: float = Field(default=10, ge=0.5, le=120)


class BenchmarkStarted(BaseModel):
    """A benchmark queued as a job (``GET /jobs/<job_id>`` follows it)."""

    job_id: int
    formats: list[str]
    batch_sizes: list[int]


class BenchmarkPoint(BaseModel):
    format: str
    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: samples per second
    throughput: float
    #: the container's peak resident memory while measuring it
    memory_mb: float | None
    #: the calls and samples behind the figures
    calls: int
    samples: int
    #: three windows in a row agreed within 10% before the point's time cap
    stable: bool
    created_at: datetime


class BudgetChoice(BaseModel):
    """The highest throughput whose p99 latency fits a budget."""

    budget_ms: float
    format: str
    batch_size: int
    p99_ms: float
    throughput: float


class BenchmarkReport(BaseModel):
    """A version's benchmark on one machine (the newest unless one is asked for)."""

    version_id: int
    #: a digest of the hardware; ``machines`` lists every machine measured
    machine: str
    machines: list[str]
    #: cpu, cores_visible, cpus_given, gpu
    hardware: dict[str, Any]
    #: python, numpy, onnxruntime, torch, scikit-learn versions
    software: dict[str, Any]
    points: list[BenchmarkPoint]
    #: the best format and batch size per latency budget
    best: list[BudgetChoice]
    #: what a service serves by default (``formats.choose_default``)
    default_format: str
