"""A version's deployment formats and benchmarks (``Workbench.conversions``): its
conversion to the formats its native model converts to, each checked against it, and its
benchmark at growing batch sizes, both queued as jobs (:mod:`workbench.models.jobs` runs
them); the formats made and the benchmark's report, with the best format per latency
budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.jobs.service import JobService
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.models.formats import CONVERSIONS, native_file
from workbench.models.jobs import (
    BENCHMARK_KIND,
    JOB_KIND,
    TARGET_TYPE,
    BenchmarkKind,
    ConversionKind,
)
from workbench.models.schemas import (
    BenchmarkPoint,
    BenchmarkReport,
    BenchmarkRequest,
    BenchmarkStarted,
    BudgetChoice,
    ConversionRequest,
    ConversionStarted,
    FormatInfo,
    ModelVersionInfo,
)
from workbench.models.versions import (
    image_of,
    owned_version,
    verified_formats,
    version_formats,
    visible_version,
)
from workbench.registry.db import Registry
from workbench.registry.models import (
    BenchmarkRun,
    Job,
    Model,
    ModelFormat,
    ModelVersion,
    User,
    utcnow,
)
from workbench.registry.unique import flush_unique
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore
from workbench.users import Actor

log = logging.getLogger(__name__)


@dataclass
class ConversionLimits:
    """What a conversion, a benchmark or an import's check may use in its container: CPUs,
    memory and a time limit (a benchmark's own). The imports share the conversions'."""

    cpus: float = 1.0
    memory_mb: int = 2048
    timeout_s: int = 600
    benchmark_timeout_s: int = 1800


@dataclass(eq=False)
class ConversionService:
    """Conversions and benchmarks of versions, their formats and reports."""

    registry: Registry
    store: ArtifactStore
    jobs: JobService
    limits: ConversionLimits

    def __post_init__(self) -> None:
        #: the job kinds that convert and benchmark (registered by Workbench)
        self.conversion_kind = ConversionKind(self.registry, self.store)
        self.benchmark_kind = BenchmarkKind(self.registry, self.store)

    def convert_new(self, version: ModelVersionInfo) -> None:
        """The automatic conversion of a version just registered (``auto_convert``, given
        to :class:`~workbench.models.versions.VersionService` as ``on_registered``), queued
        as its model's owner; a version without a signature, or that cannot be converted,
        is left as it is."""
        if not version.signature:
            return
        with self.registry.session() as s:
            owner = s.get_one(User, s.get_one(Model, version.model_id).owner_id)
            actor = Actor(owner.id, owner.username, owner.role)
        try:
            self.convert(actor, version.id)
        except WorkbenchError as exc:
            log.info("version %s is not converted automatically: %s", version.id, exc.message)

    def _native(self, version: ModelVersion) -> tuple[str, str]:
        """The version's native kind and model file (relative to its folder)."""
        folder = self.store.path(version.storage_key)
        found = native_file(folder)
        if found is None:
            raise InvalidInput(
                f"Version {version.id} has no model file Workbench converts or measures (a "
                "TorchScript *.pt, a scikit-learn *.joblib or *.skops, an ONNX *.onnx, a Keras "
                "*.keras or a SavedModel's saved_model.pb).",
                field="formats",
            )
        native, path = found
        return native, path.relative_to(folder).as_posix()

    @staticmethod
    def _signature_of(version: ModelVersion) -> dict[str, Any]:
        if not version.signature:
            raise InvalidInput(
                f"Version {version.id} declares no signature (its inputs' names, dtypes and "
                "shapes), which conversion and benchmarks need: set one with PATCH "
                f"/model-versions/{version.id} with a signature, or have the training code "
                "write signature.json beside the model.",
                field="signature",
            )
        return dict(version.signature)

    def _queue(
        self, s: Session, actor: Actor, version: ModelVersion, kind: str, **spec: Any
    ) -> Job:
        """A conversion or benchmark job of the version, in ``s``, with the container's
        limits, its image and the version's signature beside ``spec``."""
        signature = self._signature_of(version)
        return self.jobs.create(
            s,
            kind,
            owner_id=actor.id,
            target_type=TARGET_TYPE,
            target_id=version.id,
            spec={
                "version_id": version.id,
                "signature": signature,
                "image": image_of(s, version),
                **spec,
            },
            cpus=self.limits.cpus,
            memory_mb=self.limits.memory_mb,
        )

    def formats(self, actor: Actor, version_id: int) -> list[FormatInfo]:
        with self.registry.session() as s:
            visible_version(s, actor, version_id)
            return version_formats(s, version_id)

    def convert(
        self, actor: Actor, version_id: int, request: ConversionRequest | None = None
    ) -> ConversionStarted:
        """Queue the conversion of a version (its owner) to the formats asked (default:
        every format its native kind converts to), each checked against the native model.
        :class:`Conflict` while one of them is converting already."""
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            native, native_file = self._native(version)
            verified = verified_formats(s, version_id)
            wanted = _plan(native, (request or ConversionRequest()).formats, set(verified))
            job = self._queue(
                s,
                actor,
                version,
                JOB_KIND,
                native=native,
                native_file=native_file,
                formats=wanted,
                reuse={f: verified[f] for f in verified if f not in wanted},
                timeout_s=self.limits.timeout_s,
            )
            _claim_formats(s, version_id, wanted, job.id)
            return ConversionStarted(job_id=job.id, formats=version_formats(s, version_id))

    def benchmark(
        self, actor: Actor, version_id: int, request: BenchmarkRequest | None = None
    ) -> BenchmarkStarted:
        """Queue a benchmark of a version (its owner): the native model and its verified
        formats (or those asked) at batch sizes 1, 2, 4, ... up to ``max_batch``, in a
        container with the conversions' CPU and memory. :class:`Conflict` while one runs."""
        request = request or BenchmarkRequest()
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            native, native_file = self._native(version)
            verified = verified_formats(s, version_id)
            asked = request.formats if request.formats is not None else list(verified)
            missing = [f for f in asked if f not in verified]
            if missing:
                raise InvalidInput(
                    f"Only verified formats are benchmarked; version {version_id} has "
                    f"{', '.join(sorted(verified)) or 'none'}, not {', '.join(missing)} "
                    "(convert it first).",
                    field="formats",
                )
            running = s.scalar(
                sa.select(Job.id).where(
                    Job.kind == BENCHMARK_KIND,
                    Job.target_id == version_id,
                    Job.state.in_(ACTIVE_JOB_STATES),
                )
            )
            if running is not None:
                raise Conflict(
                    f"Version {version_id} is being benchmarked already (job {running}); "
                    "wait for it to end, or cancel it.",
                    job=running,
                )
            sizes = [1 << i for i in range(11) if 1 << i <= request.max_batch]
            job = self._queue(
                s,
                actor,
                version,
                BENCHMARK_KIND,
                native=native,
                native_file=native_file,
                formats={f: verified[f] for f in asked},
                batch_sizes=sizes,
                warmup_s=request.window_s,
                window_s=request.window_s,
                point_cap_s=request.point_cap_s,
                timeout_s=self.limits.benchmark_timeout_s,
            )
            return BenchmarkStarted(job_id=job.id, formats=["native", *asked], batch_sizes=sizes)

    def benchmarks(
        self, actor: Actor, version_id: int, machine: str | None = None
    ) -> BenchmarkReport:
        """A version's benchmark on ``machine`` (default: the one measured last), with the
        best format and batch size per latency budget."""
        with self.registry.session() as s:
            version = visible_version(s, actor, version_id)
            return benchmark_report(s, version_id, machine, version.default_format)


def _plan(native: str, asked: list[str] | None, verified: set[str]) -> list[str]:
    """The formats to make, in the order they are made: those asked and the ones they are
    made from (``onnx-int8`` needs ``onnx``) unless ``verified`` already."""
    possible = CONVERSIONS[native]
    if asked is None:
        return list(possible)
    unknown = [f for f in asked if f not in possible]
    if unknown or not asked:
        raise InvalidInput(
            f"A {native} model converts to {', '.join(possible)}; "
            + (f"not {', '.join(map(repr, unknown))}." if unknown else "ask for one of them."),
            field="formats",
        )
    wanted = set(asked)
    needs_onnx = wanted & {"onnx-optimized", "onnx-int8", "tensorrt"}
    if needs_onnx and "onnx" in possible and "onnx" not in verified:
        wanted.add("onnx")
    return [f for f in possible if f in wanted]


def _claim_formats(s: Session, version_id: int, formats: list[str], job_id: int) -> None:
    """Mark the formats converting for this job; :class:`Conflict` if one of them is
    converting already (two conversions of one format never run at once)."""
    for fmt in formats:
        moved = s.execute(
            sa.update(ModelFormat)
            .where(
                ModelFormat.model_version_id == version_id,
                ModelFormat.format == fmt,
                ModelFormat.state != "converting",
            )
            .values(state="converting", message="queued", job_id=job_id, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            continue
        existing = s.scalar(
            sa.select(ModelFormat).where(
                ModelFormat.model_version_id == version_id, ModelFormat.format == fmt
            )
        )
        if existing is not None:
            raise Conflict(
                f"Version {version_id} is being converted to {fmt} already (job "
                f"{existing.job_id}); wait for it to end, or cancel it, then convert again.",
                format=fmt,
                job=existing.job_id,
            )
        s.add(
            ModelFormat(
                model_version_id=version_id,
                format=fmt,
                state="converting",
                message="queued",
                job_id=job_id,
            )
        )

        def busy(fmt: str = fmt) -> None:
            raise Conflict(
                f"Version {version_id} is being converted to {fmt} already; wait for it to "
                "end, then convert again.",
                format=fmt,
            )

        flush_unique(s, "uq_model_formats_model_version_id", busy)


#: the latency budgets (ms, p99) the best format is chosen for
BUDGETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


def benchmark_report(
    s: Session, version_id: int, machine: str | None, default: str
) -> BenchmarkReport:
    runs = s.scalars(
        sa.select(BenchmarkRun)
        .where(BenchmarkRun.model_version_id == version_id)
        .order_by(BenchmarkRun.created_at.desc(), BenchmarkRun.id.desc())
    ).all()
    machines = list(dict.fromkeys(run.machine for run in runs))
    if machine is not None and machine not in machines:
        raise NotFound(
            f"Version {version_id} has no benchmark from machine {machine!r}; it has "
            f"{machines or 'none'}.",
            machine=machine,
        )
    chosen = machine or (machines[0] if machines else "")
    mine = [run for run in runs if run.machine == chosen]
    points = sorted(
        (from_row(BenchmarkPoint, run) for run in mine),
        key=lambda p: (p.format, p.batch_size),
    )
    best = []
    for budget in BUDGETS_MS:
        fitting = [p for p in points if p.p99_ms <= budget]
        if fitting:
            top = max(fitting, key=lambda p: p.throughput)
            best.append(
                BudgetChoice(
                    budget_ms=budget,
                    format=top.format,
                    batch_size=top.batch_size,
                    p99_ms=top.p99_ms,
                    throughput=top.throughput,
                )
            )
    return BenchmarkReport(
        version_id=version_id,
        machine=chosen,
        machines=machines,
        hardware=mine[0].hardware if mine else {},
        software=mine[0].software if mine else {},
        points=points,
        best=best,
        default_format=default,
    )
