"""The REST bodies of services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workbench.enums import Visibility

#: the format (and runtime) of a service that runs an algorithm's inference image
IMAGE_FORMAT = "image"
#: a service's name is part of its URLs: lowercase letters, digits and dashes
ServiceName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
]


class ServerOptions(BaseModel):
    """The model server's options (see docs/serving.md)."""

    model_config = ConfigDict(extra="forbid")

    max_batch: int = Field(default=32, ge=1, le=1024)
    max_delay_ms: float = Field(default=5.0, ge=0, le=1000)
    max_queue: int = Field(default=256, ge=1, le=100_000)
    threads: int = Field(default=1, ge=1, le=64)


class ServiceCreate(BaseModel):
    """A service from a model version served by the model server (``format``, default: the
    version's default serving format (models/formats.py's rule), else its native model), or
    from an algorithm's inference image (``algorithm_id``; with ``version_id``, that
    version's files at ``$MODEL_DIR``, by the inference contract); ``replicas``, each
    replica's ``cpus`` and ``memory_mb``."""

    model_config = ConfigDict(extra="forbid")

    name: ServiceName
    version_id: int | None = None
    algorithm_id: int | None = None
    format: str | None = None
    replicas: int = Field(default=1, ge=0, le=32)
    cpus: float = Field(default=1.0, gt=0, le=64)
    memory_mb: int = Field(default=1024, ge=128, le=1024 * 1024)
    options: ServerOptions = ServerOptions()
    visibility: Visibility = Visibility.PRIVATE
    description: str = Field(default="", max_length=4000)
    #: its endpoint answers anyone, without a key, on purpose (default: its key only)
    public_endpoint: bool = False

    @model_validator(mode="after")
    def _serves_something(self) -> ServiceCreate:
        if self.version_id is None and self.algorithm_id is None:
            raise ValueError(
                "give version_id (a model version, served by the model server) or "
                "algorithm_id (an algorithm's inference image)"
            )
        if self.algorithm_id is not None and self.format not in (None, IMAGE_FORMAT):
            raise ValueError(f"an inference image serves the format {IMAGE_FORMAT!r} only")
        return self


class ReplicaInfo(BaseModel):
    """One replica as the backend sees it now."""

    index: int
    run_id: str
    state: str
    #: its port published on 127.0.0.1 (None on Docker: replicas sit on a network of
    #: their own, which publishes none)
    port: int | None
    #: ``host:port`` where it answers on this machine (Docker: the container's address)
    address: str | None = None


class ServiceInfo(BaseModel):
    id: int
    name: str
    owner: str
    visibility: Visibility
    model_version_id: int | None
    #: the model and version number behind it
    model: str
    version: int | None
    #: what made the version: its training task and dataset; the algorithm whose inference
    #: image serves it (format "image"), else the version's (None: none of these)
    task_id: int | None = None
    dataset_id: int | None = None
    algorithm_id: int | None = None
    #: an inference image's API (its route, method, params with examples); None for the
    #: model server, whose API is the V2 metadata of the model
    api_spec: dict[str, Any] | None = None
    format: str
    runtime: str
    #: replicas asked for, and each one found running
    replicas: int
    replica_states: list[ReplicaInfo] = []
    cpus: float
    memory_mb: int
    options: ServerOptions
    #: its endpoint: host:port of the proxy in front of its replicas (kept while stopped)
    address: str
    #: the endpoint through the Workbench server, under its REST API (``/workbench/api/v1/``)
    relay: str = ""
    #: its endpoint answers without a key, on purpose (else ``Authorization: Bearer <key>``)
    public_endpoint: bool = False
    #: the endpoint's key: only in the answer that creates the service (never stored; a
    #: lost key is replaced by ``POST /services/{id}/key``)
    key: str | None = None
    #: deploying, running, stopped, failed
    state: str
    message: str
    job_id: int | None
    created_at: datetime


class ServiceKey(BaseModel):
    """A service's new endpoint key, shown this once (the previous one is refused now)."""

    service_id: int
    key: str


class ServiceStarted(BaseModel):
    """A deploy queued as a job (``GET /jobs/<job_id>`` follows it)."""

    job_id: int
    service: ServiceInfo


class Histogram(BaseModel):
    """A cumulative histogram: ``counts[i]`` observations were at most ``bounds[i]``;
    ``count`` observations in all (also those above the last bound), summing to ``sum``."""

    bounds: list[float] = []
    counts: list[float] = []
    sum: float = 0.0
    count: float = 0.0


class ReplicaMetrics(BaseModel):
    """One replica's counters since it started (the model server's ``/metrics``)."""

    index: int
    run_id: str
    #: inference requests answered (V2 infer and the simple route), and those not 200
    requests: float = 0.0
    errors: float = 0.0
    #: refused with 503 because the queue was full
    rejected: float = 0.0
    #: seconds from a request's body read to its answer
    latency: Histogram = Histogram()
    #: rows per batch the model ran
    batch_size: Histogram = Histogram()
    queue_depth: float = 0.0
    #: why it could not be read ("" when it was)
    error: str = ""


class ServiceMetrics(BaseModel):
    """Every running replica's counters, read at ``at`` (seconds since the epoch); two
    readings give the rates (:func:`workbench.deployments.metrics.rates`)."""

    service_id: int
    at: float
    replicas: list[ReplicaMetrics]


class ServiceRates(BaseModel):
    """What a service did in the ``seconds`` before ``at``, over all its replicas."""

    at: float
    seconds: float
    request_rate: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_batch: float | None
    queue_depth: float
    replicas: int


class ReplicaLog(BaseModel):
    """The last lines a replica wrote."""

    index: int
    run_id: str
    text: str
