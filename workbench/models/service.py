"""The model registry (manual 2.4): models, their versions and the versions' files.

A model is a shareable thing (owner, visibility); its versions are numbered 1, 2, ... in
the order they were registered, each with its files in the store at
``models/<model>/versions/<number>`` (addressed by the version, whatever made it) and its
lineage (task, run, algorithm, dataset, environment, parameters, evaluation, base version).

Registering is restart-safe: the files are first put at a staging key the caller names
(``models/<model>/incoming/<name>``), then moved under the version's key in the
transaction that inserts the version, so a version row always has its files, and a caller
cut short may call again with the same staging name (see :meth:`ModelService.register_version`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from workbench.access import check_visibility, get_owned, get_visible, listing
from workbench.backends.base import Backend
from workbench.datasets.archives import extract_archive
from workbench.datasets.types import ArchiveLimits
from workbench.enums import UNFINISHED_TASK_STATES, ImageKind, Visibility
from workbench.errors import Conflict, ImageNotFound, InvalidInput, NotFound, WorkbenchError
from workbench.jobs import ACTIVE_JOB_STATES, JobService
from workbench.models.evaluation import Evaluation
from workbench.models.formats import (
    CONVERSIONS,
    FRAMEWORK,
    IMPORT_KINDS,
    Signature,
    native_file,
    native_kind,
    read_signature,
)
from workbench.models.jobs import (
    BENCHMARK_KIND,
    IMPORT_KIND,
    JOB_KIND,
    TARGET_TYPE,
    BenchmarkKind,
    ConversionKind,
    ImportKind,
    formats_key,
    refuse_unboxed,
)
from workbench.models.schemas import (
    ALIAS_PATTERN,
    TAG_KEY_PATTERN,
    BenchmarkPoint,
    BenchmarkReport,
    BenchmarkRequest,
    BenchmarkStarted,
    BudgetChoice,
    ConversionRequest,
    ConversionStarted,
    FormatInfo,
    ImportStarted,
    ModelDetail,
    ModelFilter,
    ModelImport,
    ModelInfo,
    ModelUpdate,
    ModelVersionInfo,
    NewVersion,
    VersionComparison,
    VersionUpdate,
)
from workbench.registry import Registry
from workbench.registry.models import (
    AlgorithmImage,
    BenchmarkRun,
    Environment,
    Job,
    Model,
    ModelAlias,
    ModelFormat,
    ModelVersion,
    Service,
    TrainingTask,
    User,
    utcnow,
)
from workbench.registry.unique import flush_unique
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor

log = logging.getLogger(__name__)

_ATTEMPTS = 5


def version_key(model_id: int, number: int) -> str:
    """The store folder of a version's files."""
    return f"models/{model_id}/versions/{number}"


def staging_key(model_id: int, name: str) -> str:
    return f"models/{model_id}/incoming/{name}"


class ModelService:
    """Models and versions: reading with the visibility rules, and registering."""

    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        jobs: JobService,
        *,
        conversion_cpus: float = 1.0,
        conversion_memory_mb: int = 2048,
        conversion_timeout_s: int = 600,
        benchmark_timeout_s: int = 1800,
        auto_convert: bool = False,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        """``auto_convert``: queue the conversion of each new version that declares a
        signature (to every format its native model converts to), as its model's owner.
        ``archive_limits``: what an imported archive may unpack to."""
        self.registry = registry
        self.store = store
        self.jobs = jobs
        self.archive_limits = archive_limits or ArchiveLimits()
        self.conversion_kind = ConversionKind(registry, store)
        self.benchmark_kind = BenchmarkKind(registry, store)
        self.import_kind = ImportKind(registry, store, self._register_import)
        self.benchmark_timeout_s = benchmark_timeout_s
        self.auto_convert = auto_convert
        self.conversion_cpus = conversion_cpus
        self.conversion_memory_mb = conversion_memory_mb
        self.conversion_timeout_s = conversion_timeout_s

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: ModelFilter | None = None) -> list[ModelInfo]:
        """The models the actor sees, newest first, filtered (see :class:`ModelFilter`)."""
        f = filters or ModelFilter()
        query = listing(
            Model,
            actor,
            ((Model.visibility, f.visibility), (Model.name, f.name), (Model.purpose, f.purpose)),
            mine=f.mine,
            q=f.q,
        )
        if f.owner is not None:
            query = query.join(User, User.id == Model.owner_id).where(User.username == f.owner)
        if f.framework is not None:
            query = query.where(
                sa.exists().where(
                    ModelVersion.model_id == Model.id, ModelVersion.framework == f.framework
                )
            )
        with self.registry.session() as s:
            rows = s.scalars(query.order_by(Model.id.desc())).all()
            if f.tag is not None:
                rows = [row for row in rows if _tagged(s, row, f.tag)]
            return _model_infos(s, rows)

    def get(self, actor: Actor, model_id: int) -> ModelDetail:
        with self.registry.session() as s:
            row = get_visible(s, Model, model_id, actor, "model")
            versions = s.scalars(
                sa.select(ModelVersion)
                .where(ModelVersion.model_id == model_id)
                .order_by(ModelVersion.version)
            ).all()
            return ModelDetail(
                **_model_fields(s, row), versions=[version_info(v, s) for v in versions]
            )

    def get_version(self, actor: Actor, version_id: int) -> ModelVersionInfo:
        with self.registry.session() as s:
            return version_info(visible_version(s, actor, version_id), s)

    def by_alias(self, actor: Actor, model_id: int, alias: str) -> ModelVersionInfo:
        """The version an alias of the model points at now."""
        with self.registry.session() as s:
            get_visible(s, Model, model_id, actor, "model")
            row = _alias(s, model_id, alias)
            return version_info(s.get_one(ModelVersion, row.version_id), s)

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
            verified = _verified(s, version_id)
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
                timeout_s=self.benchmark_timeout_s,
            )
            return BenchmarkStarted(job_id=job.id, formats=["native", *asked], batch_sizes=sizes)

    def benchmarks(
        self, actor: Actor, version_id: int, machine: str | None = None
    ) -> BenchmarkReport:
        """A version's benchmark on ``machine`` (default: the one measured last), with the
        best format and batch size per latency budget."""
        with self.registry.session() as s:
            version = visible_version(s, actor, version_id)
            return _report(s, version_id, machine, version.default_format)

    def compare(self, actor: Actor, version_ids: list[int]) -> VersionComparison:
        """Two or more versions (of one model or several) side by side: parameters and
        the evaluation's scalar metrics, one value per version."""
        if len(version_ids) < 2 or len(set(version_ids)) != len(version_ids):
            raise InvalidInput(
                "Compare two or more different versions: give their ids (e.g. ids=3,5).",
                field="ids",
            )
        with self.registry.session() as s:
            rows = [visible_version(s, actor, v) for v in version_ids]
            versions = [version_info(v, s) for v in rows]
            models = [s.get_one(Model, v.model_id).name for v in rows]
        names = sorted({k for v in versions for k in v.parameters})
        parameters = {k: [v.parameters.get(k) for v in versions] for k in names}
        metrics: dict[str, list[float | None]] = {}
        for key in ("accuracy", "precision", "recall", "f1"):
            values = [getattr(v.evaluation, key) if v.evaluation else None for v in versions]
            if any(value is not None for value in values):
                metrics[key] = values
        extra = sorted({k for v in versions if v.evaluation for k in v.evaluation.metrics})
        for key in extra:
            values = [
                _number(v.evaluation.metrics.get(key)) if v.evaluation else None for v in versions
            ]
            if any(value is not None for value in values):
                metrics[key] = values
        differing = [k for k, values in parameters.items() if len({repr(x) for x in values}) > 1]
        with self.registry.session() as s:
            reports = [_report(s, v.id, None, v.default_format) for v in versions]
        names = sorted({f.format for v in versions for f in v.formats})
        formats = {
            name: [next((f.state for f in v.formats if f.format == name), None) for v in versions]
            for name in names
        }
        measured = sorted({p.format for r in reports for p in r.points})
        latency = {
            name: [
                next((p.p50_ms for p in r.points if p.format == name and p.batch_size == 1), None)
                for r in reports
            ]
            for name in measured
        }
        throughput = {
            name: [
                max((p.throughput for p in r.points if p.format == name), default=None)
                for r in reports
            ]
            for name in measured
        }
        return VersionComparison(
            versions=versions,
            models=models,
            parameters=parameters,
            metrics=metrics,
            differing=differing,
            formats=formats,
            latency_ms=latency,
            throughput=throughput,
        )

    def archive(self, actor: Actor, version_id: int, fmt: str | None = None) -> tuple[Path, str]:
        """A version's native files (or one verified format's) as a zip in the store's tmp
        folder (the caller deletes it), and the file name to offer."""
        with self.registry.session() as s:
            version = visible_version(s, actor, version_id)
            model = s.get_one(Model, version.model_id)
            name = f"{_safe_name(model.name)}-v{version.version}"
            if fmt is None:
                folder = self.store.path(version.storage_key)
            else:
                verified = _verified(s, version_id)
                if fmt not in verified:
                    raise NotFound(
                        f"Version {version_id} has no verified {fmt} format; it has "
                        f"{', '.join(sorted(verified)) or 'none'}.",
                        format=fmt,
                    )
                folder = self.store.path(f"{formats_key(model.id, version.version)}/{fmt}")
                name += f"-{fmt}"
            name += ".zip"
        tmp_dir = self.store.path("tmp")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=tmp_dir)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in _files(folder):
                    zf.write(path, path.relative_to(folder).as_posix())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp), name

    # --- changing -------------------------------------------------------------------------

    def update(self, actor: Actor, model_id: int, change: ModelUpdate) -> ModelDetail:
        """The owner changes the name, description, purpose or visibility."""
        with self.registry.session() as s:
            row = get_owned(s, Model, model_id, actor, "model")
            if change.visibility is not None:
                check_visibility(actor, change.visibility)
                row.visibility = change.visibility
            for field in ("name", "description", "purpose"):
                value = getattr(change, field)
                if value is not None:
                    setattr(row, field, value)
        return self.get(actor, model_id)

    def update_version(
        self, actor: Actor, version_id: int, change: VersionUpdate
    ) -> ModelVersionInfo:
        signature = (
            _signature(change.signature).model_dump(mode="json")
            if change.signature is not None
            else None
        )
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            if change.description is not None:
                version.description = change.description
            if signature is not None:
                version.signature = signature
            s.flush()
            return version_info(version, s)

    # --- conversion -----------------------------------------------------------------------

    def _convert_new(self, version: ModelVersionInfo) -> None:
        """The automatic conversion of a version just registered (``auto_convert``), queued
        as its model's owner; a version that cannot be converted is left as it is."""
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
            cpus=self.conversion_cpus,
            memory_mb=self.conversion_memory_mb,
        )

    def formats(self, actor: Actor, version_id: int) -> list[FormatInfo]:
        with self.registry.session() as s:
            visible_version(s, actor, version_id)
            return _formats(s, version_id)

    def convert(
        self, actor: Actor, version_id: int, request: ConversionRequest | None = None
    ) -> ConversionStarted:
        """Queue the conversion of a version (its owner) to the formats asked (default:
        every format its native kind converts to), each checked against the native model.
        :class:`Conflict` while one of them is converting already."""
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            native, native_file = self._native(version)
            verified = _verified(s, version_id)
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
                timeout_s=self.conversion_timeout_s,
            )
            _claim_formats(s, version_id, wanted, job.id)
            return ConversionStarted(job_id=job.id, formats=_formats(s, version_id))

    def set_tag(self, actor: Actor, model_id: int, key: str, value: str) -> dict[str, str]:
        """Set a tag on the model (the owner); all its tags."""
        with self.registry.session() as s:
            return _set_tag(get_owned(s, Model, model_id, actor, "model"), key, value)

    def delete_tag(self, actor: Actor, model_id: int, key: str) -> dict[str, str]:
        with self.registry.session() as s:
            return _delete_tag(get_owned(s, Model, model_id, actor, "model"), key)

    def set_version_tag(
        self, actor: Actor, version_id: int, key: str, value: str
    ) -> dict[str, str]:
        """Set a tag on a version (its model's owner); all its tags."""
        with self.registry.session() as s:
            return _set_tag(owned_version(s, actor, version_id), key, value)

    def delete_version_tag(self, actor: Actor, version_id: int, key: str) -> dict[str, str]:
        with self.registry.session() as s:
            return _delete_tag(owned_version(s, actor, version_id), key)

    def set_alias(self, actor: Actor, model_id: int, alias: str, version: int) -> dict[str, int]:
        """Point ``alias`` at the model's version number ``version`` (made, or moved in one
        UPDATE: a reader sees the old version or the new one, never none); all aliases."""
        if not re.match(ALIAS_PATTERN, alias) or alias.isdigit():
            raise InvalidInput(
                f"{alias!r} is not an alias: start with a letter, then letters, digits, "
                "'_', '-' or '.', at most 64 characters (e.g. champion).",
                field="alias",
            )
        with self.registry.session() as s:
            get_owned(s, Model, model_id, actor, "model")
            target = _numbered(s, model_id, version)
            moved = s.execute(
                sa.update(ModelAlias)
                .where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
                .values(version_id=target.id, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount == 0:  # type: ignore[attr-defined]
                s.add(ModelAlias(model_id=model_id, alias=alias, version_id=target.id))
            s.flush()
            return _aliases(s, model_id)

    def delete_alias(self, actor: Actor, model_id: int, alias: str) -> dict[str, int]:
        with self.registry.session() as s:
            get_owned(s, Model, model_id, actor, "model")
            s.delete(_alias(s, model_id, alias))
            s.flush()
            return _aliases(s, model_id)

    # --- deleting -------------------------------------------------------------------------

    def delete_version(self, actor: Actor, version_id: int) -> None:
        """Delete a version and its files (converted formats and benchmarks with it).
        Refused while a service serves it, an alias points at it, or a training task that
        may still run starts from it."""
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            _check_deletable(s, [version])
            key = version.storage_key
            converted = formats_key(version.model_id, version.version)
            _forget(s, [version.id])
            s.delete(version)
        if key:
            self.store.delete(key)
        self.store.delete(converted)

    def delete(self, actor: Actor, model_id: int) -> None:
        """Delete a model with all its versions (as :meth:`delete_version`, all or none)."""
        with self.registry.session() as s:
            model = get_owned(s, Model, model_id, actor, "model")
            versions = s.scalars(
                sa.select(ModelVersion).where(ModelVersion.model_id == model_id)
            ).all()
            s.execute(sa.delete(ModelAlias).where(ModelAlias.model_id == model_id))
            _check_deletable(s, versions)
            _forget(s, [v.id for v in versions])
            for version in versions:
                s.delete(version)
            s.execute(
                sa.update(TrainingTask)
                .where(TrainingTask.model_id == model_id)
                .values(model_id=None)
                .execution_options(synchronize_session=False)
            )
            s.flush()
            s.delete(model)
        self.store.delete(f"models/{model_id}")

    def files(self, version_id: int) -> Path:
        """The folder of a version's files (no access check: callers did theirs)."""
        with self.registry.session() as s:
            return self.store.path(s.get_one(ModelVersion, version_id).storage_key)

    # --- importing ------------------------------------------------------------------------

    def check_import(self, actor: Actor, request: ModelImport) -> Environment:
        """What can be told of an import from its request alone (before its file is read):
        :class:`InvalidInput` saying what is wrong, :class:`Unsupported` on a backend that
        does not box runs in; the environment it is checked in."""
        refuse_unboxed(self.jobs.runner.backend, "import")
        if request.kind not in IMPORT_KINDS:
            raise InvalidInput(
                f"{request.kind!r} is not a kind of model Workbench imports; use one of: "
                + "; ".join(f"{k} ({what})" for k, (what, _, _) in IMPORT_KINDS.items()),
                field="kind",
            )
        check_visibility(actor, request.visibility)
        if request.signature:
            _signature(request.signature)
        elif request.kind in ("torchscript", "pytorch"):
            raise InvalidInput(
                f"A {request.kind} model does not record its inputs' shapes: give a signature, "
                '{"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}]} '
                "(-1: the batch axis).",
                field="signature",
            )
        if request.kind in ("pytorch", "savedmodel") and not _is_archive(request.filename):
            what = (
                "the module's .py files and the state dict"
                if request.kind == "pytorch"
                else "the SavedModel folder"
            )
            raise InvalidInput(
                f"A {request.kind} model is a folder: upload it as an archive "
                f"({', '.join(ARCHIVE_SUFFIXES)}) of {what}.",
                field="filename",
            )
        if request.kind == "pytorch" and not request.entry:
            raise InvalidInput(
                "A state dict needs its module class: give entry=module:Class (e.g. model:Net "
                "for class Net in model.py).",
                field="entry",
            )
        with self.registry.session() as s:
            if request.model_id is not None:
                get_owned(s, Model, request.model_id, actor, "model")
            elif not request.name:
                raise InvalidInput(
                    "Name the model the version goes to: name (yours, or a new one) or model_id.",
                    field="name",
                )
            return _import_environment(s, actor, request)

    def import_model(self, actor: Actor, upload: StoredFile, request: ModelImport) -> ImportStarted:
        """Queue the import of a model trained elsewhere (``upload``, a finished upload,
        moves into the store): first what the request (:meth:`check_import`) and the file's
        first bytes tell, at once (400 with what is wrong); then the job checks it in a
        container of the environment's image and registers it (see :class:`ImportKind`)."""
        environment = self.check_import(actor, request)
        image = _pinned_image(self.jobs.runner.backend, environment)
        signature = (
            _signature(request.signature).model_dump(mode="json") if request.signature else {}
        )
        filename = _safe_name(Path(request.filename).name)
        archive = _is_archive(filename)
        if not archive:
            _check_model_file(upload.path, filename, request.kind)
        key = f"models/imports/{uuid.uuid4().hex}"
        target = self.store.path(key)
        if archive:
            extract_archive(upload.path, target, self.archive_limits)
            drop_links(target)
        else:
            target.mkdir(parents=True)
            shutil.move(str(upload.path), str(target / filename))
        try:
            with self.registry.session() as s:
                job = self.jobs.create(
                    s,
                    IMPORT_KIND,
                    owner_id=actor.id,
                    target_type="model",
                    target_id=request.model_id,
                    spec={
                        **request.model_dump(mode="json"),
                        "signature": signature,
                        "upload_key": key,
                        "sha256": upload.sha256,
                        "image": image,
                        "environment_id": environment.id,
                        "owner_id": actor.id,
                        "timeout_s": self.conversion_timeout_s,
                    },
                    cpus=self.conversion_cpus,
                    memory_mb=self.conversion_memory_mb,
                )
                return ImportStarted(job_id=job.id, environment_id=environment.id)
        except BaseException:
            self.store.delete(key)
            raise

    def _register_import(
        self, spec: dict[str, Any], folder: Path, result: dict[str, Any]
    ) -> dict[str, Any]:
        """The import job's last step: register ``folder`` as the next version of the
        model it names (made now when the owner has none of that name)."""
        with self.registry.session() as s:
            model_id = spec.get("model_id")
            if model_id is None:
                model_id = s.scalar(
                    sa.select(Model.id)
                    .where(Model.owner_id == spec["owner_id"], Model.name == spec["name"])
                    .order_by(Model.id)
                    .limit(1)
                )
            if model_id is None:
                model = Model(
                    name=spec["name"],
                    owner_id=spec["owner_id"],
                    visibility=Visibility(spec["visibility"]),
                    description=spec["description"],
                    purpose=spec["purpose"],
                )
                s.add(model)
                s.flush()
                model_id = model.id
            name = s.get_one(Model, model_id).name
        info = self.register_version(
            model_id,
            folder,
            NewVersion(
                job_id=spec["job_id"],
                environment_id=spec["environment_id"],
                framework=FRAMEWORK[result["native"]],
                signature=result["signature"],
                description=spec["description"],
                source={
                    "import": spec["kind"],
                    "file": spec["filename"],
                    "sha256": spec["sha256"],
                    "warnings": result.get("warnings", []),
                },
            ),
            staging=f"import-{spec['job_id']}",
        )
        return {"model": name, "model_id": model_id, "version": info.version, "version_id": info.id}

    # --- registering ----------------------------------------------------------------------

    @staticmethod
    def model_for(
        s: Session,
        *,
        name: str,
        owner_id: int,
        visibility: Visibility,
        description: str = "",
        purpose: str = "",
        base_version_id: int | None = None,
    ) -> Model:
        """In the caller's transaction: the model a new version goes to. The base version's
        model when the same owner owns it (transfer training goes on from it), else a new
        model with this name, owner and visibility."""
        if base_version_id is not None:
            base = s.get_one(ModelVersion, base_version_id)
            model = s.get_one(Model, base.model_id)
            if model.owner_id == owner_id:
                return model
        model = Model(
            name=name,
            owner_id=owner_id,
            visibility=visibility,
            description=description,
            purpose=purpose,
        )
        s.add(model)
        s.flush()
        return model

    def register_version(
        self, model_id: int, source: Path, lineage: NewVersion, *, staging: str
    ) -> ModelVersionInfo:
        """Register the files of the folder ``source`` (moved, not copied; links and other
        non-regular files are dropped first) as the next version of the model.

        ``staging`` names the caller's attempt (a run's id, say). Called again with the
        same name after a crash, it finds the files already staged when ``source`` is gone,
        and returns the version already registered for ``lineage.job_id`` if there is one.
        """
        with self.registry.session() as s:
            if lineage.job_id is not None:
                done = s.scalar(
                    sa.select(ModelVersion).where(ModelVersion.job_id == lineage.job_id)
                )
                if done is not None:
                    return version_info(done)
        staged = staging_key(model_id, staging)
        if has_files(source):
            drop_links(source)
            if self.store.exists(staged):
                self.store.delete(staged)
            self.store.publish_dir(source, staged)
        elif not self.store.exists(staged):
            raise InvalidInput(f"{source} holds no model files to register.", field="files")
        manifest, count, size = _manifest(self.store.path(staged))
        fields = lineage.model_dump()
        native = native_kind(self.store.path(staged))
        if native is not None:
            fields["framework"] = FRAMEWORK[native]
        if not lineage.signature:
            declared = read_signature(self.store.path(staged))
            fields["signature"] = declared.model_dump(mode="json") if declared else {}
        for attempt in range(_ATTEMPTS):
            moved_to: Path | None = None
            try:
                with self.registry.session() as s:
                    model = s.get_one(Model, model_id)
                    highest = s.scalar(
                        sa.select(sa.func.coalesce(sa.func.max(ModelVersion.version), 0)).where(
                            ModelVersion.model_id == model_id
                        )
                    )
                    number = 1 + max(highest, model.last_version)
                    model.last_version = number
                    key = version_key(model_id, number)
                    if self.store.exists(key):  # left by an attempt whose commit failed
                        self.store.delete(key)
                    target = self.store.path(key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(self.store.path(staged), target)
                    moved_to = target
                    version = ModelVersion(
                        model_id=model_id,
                        version=number,
                        storage_key=key,
                        sha256=hashlib.sha256(manifest.encode()).hexdigest(),
                        files=count,
                        size=size,
                        **fields,
                    )
                    s.add(version)
                    s.flush()
                    info = version_info(version)
                if self.auto_convert and info.signature:
                    self._convert_new(info)
                return info
            except sa.exc.IntegrityError:  # another registration took the number
                if moved_to is not None:
                    os.rename(moved_to, self.store.path(staged))
                if attempt == _ATTEMPTS - 1:
                    raise
            except BaseException:
                if moved_to is not None and moved_to.exists():
                    os.rename(moved_to, self.store.path(staged))
                raise
        raise AssertionError("unreachable")


def owned_version(s: Session, actor: Actor, version_id: int) -> ModelVersion:
    """The version if the actor owns its model; 404 if they do not see it, 403 if they
    only see it."""
    version = visible_version(s, actor, version_id)
    get_owned(s, Model, version.model_id, actor, "model")
    return version


def _numbered(s: Session, model_id: int, number: int) -> ModelVersion:
    version = s.scalar(
        sa.select(ModelVersion).where(
            ModelVersion.model_id == model_id, ModelVersion.version == number
        )
    )
    if version is None:
        raise NotFound(
            f"Model {model_id} has no version {number}; `workbench model show {model_id}` "
            "lists its versions.",
            model=model_id,
            version=number,
        )
    return version


def _alias(s: Session, model_id: int, alias: str) -> ModelAlias:
    row = s.scalar(
        sa.select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
    )
    if row is None:
        raise NotFound(
            f"Model {model_id} has no alias {alias!r}; its aliases are "
            f"{sorted(_aliases(s, model_id))}.",
            model=model_id,
            alias=alias,
        )
    return row


def _aliases(s: Session, model_id: int) -> dict[str, int]:
    """alias -> version number"""
    rows = s.execute(
        sa.select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    ).all()
    return {alias: number for alias, number in rows}


def _check_deletable(s: Session, versions: Sequence[ModelVersion]) -> None:
    """:class:`Conflict` naming what still uses one of the versions."""
    ids = [v.id for v in versions]
    if not ids:
        return
    numbers = {v.id: v.version for v in versions}
    # (what uses it: (name, version id) rows; the sentence; what to do; the detail's key)
    users = (
        (
            sa.select(Service.name, Service.model_version_id).where(
                Service.model_version_id.in_(ids)
            ),
            "Services serve this model",
            "Delete them, or move them to another version, first.",
            "services",
        ),
        (
            sa.select(ModelAlias.alias, ModelAlias.version_id).where(
                ModelAlias.version_id.in_(ids)
            ),
            "Aliases point at this version",
            "Move them to another version or delete them first.",
            "aliases",
        ),
        (
            sa.select(ModelFormat.format, ModelFormat.model_version_id).where(
                ModelFormat.model_version_id.in_(ids), ModelFormat.state == "converting"
            ),
            "A conversion is under way",
            "Wait for it to end, or cancel its job, first.",
            "formats",
        ),
        (
            sa.select(
                sa.literal("task ")
                + sa.cast(TrainingTask.id, sa.String)
                + ": "
                + TrainingTask.name,
                TrainingTask.base_model_version_id,
            ).where(
                TrainingTask.base_model_version_id.in_(ids),
                TrainingTask.state.in_(UNFINISHED_TASK_STATES),
            ),
            "Training tasks not finished yet start from this version",
            "Let them finish, or change or delete them, first.",
            "tasks",
        ),
    )
    for query, what, remedy, key in users:
        rows = s.execute(query).all()
        if rows:
            named = ", ".join(f"{name!r} (version {numbers[v]})" for name, v in rows)
            raise Conflict(f"{what}: {named}. {remedy}", **{key: [name for name, _ in rows]})


def _forget(s: Session, ids: list[int]) -> None:
    """What refers to versions about to be deleted and outlives them: finished tasks'
    base version, and later versions' lineage, become unknown."""
    if not ids:
        return
    s.execute(
        sa.update(TrainingTask)
        .where(TrainingTask.base_model_version_id.in_(ids))
        .values(base_model_version_id=None)
        .execution_options(synchronize_session=False)
    )
    s.execute(
        sa.update(ModelVersion)
        .where(ModelVersion.base_version_id.in_(ids), ModelVersion.id.not_in(ids))
        .values(base_version_id=None)
        .execution_options(synchronize_session=False)
    )
    s.flush()


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


def _verified(s: Session, version_id: int) -> dict[str, str]:
    """The version's verified formats: format -> its model file."""
    rows = s.scalars(
        sa.select(ModelFormat).where(
            ModelFormat.model_version_id == version_id, ModelFormat.state == "verified"
        )
    )
    return {row.format: row.file for row in rows}


def _formats(s: Session, version_id: int) -> list[FormatInfo]:
    rows = s.scalars(
        sa.select(ModelFormat)
        .where(ModelFormat.model_version_id == version_id)
        .order_by(ModelFormat.id)
    ).all()
    return [_format_info(row) for row in rows]


def _format_info(row: ModelFormat) -> FormatInfo:
    return FormatInfo(
        format=row.format,
        state=row.state,
        message=row.message,
        check=row.check or {},
        file=row.file,
        size=row.size,
        job_id=row.job_id,
        updated_at=row.updated_at,
    )


#: the latency budgets (ms, p99) the best format is chosen for
BUDGETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


def _report(s: Session, version_id: int, machine: str | None, default: str) -> BenchmarkReport:
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
        (
            BenchmarkPoint(
                format=run.format,
                batch_size=run.batch_size,
                p50_ms=run.p50_ms,
                p95_ms=run.p95_ms,
                p99_ms=run.p99_ms,
                throughput=run.throughput,
                memory_mb=run.memory_mb,
                calls=run.calls,
                samples=run.samples,
                stable=run.stable,
                created_at=run.created_at,
            )
            for run in mine
        ),
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


def image_of(s: Session, version: ModelVersion) -> str:
    """The image a version's conversion runs in: its environment's, else its algorithm's
    training image (built from an environment)."""
    if version.environment_id is not None:
        environment = s.get(Environment, version.environment_id)
        if environment is not None and environment.image_ref:
            return environment.image_ref
    if version.algorithm_id is not None:
        image = s.scalar(
            sa.select(AlgorithmImage.image_ref).where(
                AlgorithmImage.algorithm_id == version.algorithm_id,
                AlgorithmImage.kind == ImageKind.TRAIN,
            )
        )
        if image:
            return image
    raise InvalidInput(
        f"Version {version.id} has no environment image to convert in (no environment, and "
        "no algorithm with a training image, in its lineage).",
        field="environment_id",
    )


def _signature(raw: dict[str, Any]) -> Signature:
    try:
        return Signature.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            f"Not a signature: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}; give "
            '{"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}]}.',
            field="signature",
        ) from exc


#: an upload whose name ends so is unpacked (zip, tar, tar.gz)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
#: import kind -> the names its single file may have
IMPORT_SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".torchscript"),
    "keras": (".keras",),
    "skops": (".skops",),
    "pickle": (".joblib", ".pkl"),
}


def _is_archive(filename: str) -> bool:
    return filename.lower().endswith(ARCHIVE_SUFFIXES)


def _check_model_file(path: Path, filename: str, kind: str) -> None:
    """What the first bytes tell of a single uploaded model file, before any job: its name
    fits the kind, an ONNX file is a protocol buffer, a TorchScript, Keras or skops file is
    a zip archive, and a TorchScript file is not a bare state dict (that is kind pytorch)."""
    suffixes = IMPORT_SUFFIXES[kind]
    if not filename.lower().endswith(suffixes):
        raise InvalidInput(
            f"{filename} is not named as a {kind} file ({', '.join(suffixes)}); rename it, or "
            "choose the kind it is.",
            field="filename",
        )
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise InvalidInput(f"{filename} is empty (0 bytes); upload it again.", field="file")
    if kind == "onnx" and head[0] != 0x08:  # ModelProto starts with its ir_version field
        raise InvalidInput(
            f"{filename} is not an ONNX model (it does not start as one); export it with "
            "torch.onnx.export, tf2onnx or skl2onnx.",
            field="file",
        )
    if kind in ("torchscript", "keras", "skops"):
        if not zipfile.is_zipfile(path):
            raise InvalidInput(
                f"{filename} is not a {kind} file ({kind} files are zip archives, and this one "
                "is not).",
                field="file",
            )
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if kind == "torchscript" and not any("/code/" in n for n in names):
            raise InvalidInput(
                f"{filename} holds no TorchScript code: it looks like a state dict "
                "(torch.save(model.state_dict())). Import it as kind pytorch with its module's "
                "code, or save the model with torch.jit.save(torch.jit.script(model)).",
                field="file",
            )
        if kind == "keras" and "config.json" not in names:
            raise InvalidInput(
                f"{filename} is a zip archive but not a Keras model (no config.json); save it "
                "with model.save('model.keras').",
                field="file",
            )


def _import_environment(s: Session, actor: Actor, request: ModelImport) -> Environment:
    """The environment an import is checked (and later converted) in: the one asked for
    (visible, with an image), else the newest of the kind's frameworks among the caller's
    own and the presets. Never another user's public one unasked: its owner can change its
    image at any time, and the import would run his image on the caller's upload."""
    if request.environment_id is not None:
        environment = get_visible(s, Environment, request.environment_id, actor, "environment")
        if not environment.image_ref:
            raise InvalidInput(
                f"Environment {environment.id} has no image yet; build it, or choose another.",
                field="environment_id",
            )
        return environment
    frameworks = IMPORT_KINDS[request.kind][2]
    candidates = [
        e
        for e in s.scalars(listing(Environment, actor, []))
        if e.framework in frameworks
        and e.image_ref
        and (e.owner_id == actor.id or e.visibility == Visibility.PRESET)
    ]
    if not candidates:
        raise InvalidInput(
            f"No environment of yours or preset with an image can check a {request.kind} "
            f"model (it needs one of the frameworks {', '.join(frameworks)}): build one, ask "
            "an admin for the presets, or give environment_id.",
            field="environment_id",
        )
    return min(candidates, key=lambda e: (frameworks.index(e.framework), -e.id))


def _pinned_image(backend: Backend, environment: Environment) -> str:
    """The id of the image an import runs in (``sha256:...``), fixed when it is asked for:
    the id the registry keeps, else what the environment's tag names now. A tag can move
    (a rebuild, an upload) between the request and the run; the id cannot."""
    try:
        return environment.image_id or backend.inspect_image(environment.image_ref).id
    except ImageNotFound as exc:
        raise InvalidInput(
            f"Environment {environment.id}'s image {environment.image_ref} is not on this "
            "server's engine; build it again, or choose another environment.",
            field="environment_id",
        ) from exc


def _tagged(s: Session, model: Model, tag: str) -> bool:
    """Whether the model or one of its versions has ``key`` or ``key=value``."""
    key, sep, value = tag.partition("=")
    tag_sets = [
        model.tags,
        *s.scalars(sa.select(ModelVersion.tags).where(ModelVersion.model_id == model.id)),
    ]
    return any(key in tags and (not sep or tags[key] == value) for tags in tag_sets)


def _set_tag(row: Model | ModelVersion, key: str, value: str) -> dict[str, str]:
    if not re.match(TAG_KEY_PATTERN, key):
        raise InvalidInput(
            f"{key!r} is not a tag key: 1 to 128 letters, digits, spaces or _ . : -.",
            field="key",
        )
    row.tags = {**row.tags, key: value}
    return dict(row.tags)


def _delete_tag(row: Model | ModelVersion, key: str) -> dict[str, str]:
    if key not in row.tags:
        raise NotFound(f"No tag {key!r} here; the tags are {sorted(row.tags)}.", tag=key)
    row.tags = {k: v for k, v in row.tags.items() if k != key}
    return dict(row.tags)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def visible_version(s: Session, actor: Actor, version_id: int) -> ModelVersion:
    """The version if the actor sees its model; 404 otherwise."""
    version = s.get(ModelVersion, version_id)
    if version is None:
        raise NotFound.entity("model version", version_id)
    try:
        get_visible(s, Model, version.model_id, actor, "model")
    except NotFound:
        raise NotFound.entity("model version", version_id) from None
    return version


def version_info(
    v: ModelVersion,
    s: Session | None = None,
    *,
    aliases: list[str] | None = None,
    formats: list[FormatInfo] | None = None,
) -> ModelVersionInfo:
    """A version as the API shows it; with a session, the aliases that point at it and its
    formats (unless given: a listing reads them for all its versions at once)."""
    if aliases is None:
        aliases = (
            list(s.scalars(sa.select(ModelAlias.alias).where(ModelAlias.version_id == v.id)))
            if s is not None
            else []
        )
    if formats is None:
        formats = _formats(s, v.id) if s is not None else []
    return ModelVersionInfo(
        id=v.id,
        model_id=v.model_id,
        version=v.version,
        task_id=v.task_id,
        job_id=v.job_id,
        algorithm_id=v.algorithm_id,
        dataset_id=v.dataset_id,
        environment_id=v.environment_id,
        parameters=v.parameters,
        evaluation=Evaluation.model_validate(v.evaluation) if v.evaluation else None,
        base_version_id=v.base_version_id,
        sha256=v.sha256,
        files=v.files,
        size=v.size,
        description=v.description or "",
        framework=v.framework or "",
        signature=v.signature or {},
        tags=v.tags or {},
        aliases=sorted(aliases),
        formats=formats,
        default_format=v.default_format or "",
        source=v.source or {},
        created_at=v.created_at,
    )


def _model_fields(s: Session, row: Model) -> dict[str, Any]:
    return _model_infos(s, [row])[0].model_dump()


def _model_infos(s: Session, rows: Sequence[Model]) -> list[ModelInfo]:
    """The models as the API lists them, each with its latest version: a few queries for
    all of them (owners, latest versions, aliases, formats), never a few per model."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    owners = dict(
        s.execute(
            sa.select(User.id, User.username).where(User.id.in_({r.owner_id for r in rows}))
        ).all()
    )
    newest = (
        sa.select(ModelVersion.model_id, sa.func.max(ModelVersion.version).label("number"))
        .where(ModelVersion.model_id.in_(ids))
        .group_by(ModelVersion.model_id)
        .subquery()
    )
    latest = {
        v.model_id: v
        for v in s.scalars(
            sa.select(ModelVersion).join(
                newest,
                sa.and_(
                    ModelVersion.model_id == newest.c.model_id,
                    ModelVersion.version == newest.c.number,
                ),
            )
        )
    }
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    pointing: dict[int, list[str]] = {}
    for model_id, alias, version_id, number in s.execute(
        sa.select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.id, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id.in_(ids))
        .order_by(ModelAlias.alias)
    ):
        aliases[model_id][alias] = number
        pointing.setdefault(version_id, []).append(alias)
    formats: dict[int, list[FormatInfo]] = {v.id: [] for v in latest.values()}
    for fmt in s.scalars(
        sa.select(ModelFormat)
        .where(ModelFormat.model_version_id.in_(list(formats)))
        .order_by(ModelFormat.id)
    ):
        formats[fmt.model_version_id].append(_format_info(fmt))
    infos = []
    for row in rows:
        version = latest.get(row.id)
        infos.append(
            ModelInfo(
                id=row.id,
                name=row.name,
                description=row.description,
                owner=owners.get(row.owner_id, "?"),
                visibility=row.visibility,
                project_id=row.project_id,
                purpose=row.purpose or "",
                tags=row.tags or {},
                aliases=aliases[row.id],
                latest_version=(
                    version_info(
                        version,
                        aliases=sorted(pointing.get(version.id, [])),
                        formats=formats[version.id],
                    )
                    if version is not None
                    else None
                ),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return infos


def has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def drop_links(folder: Path) -> list[str]:
    """Remove what is not a regular file or a folder (links could reach out of the model);
    their paths."""
    dropped = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            dropped.append(path.relative_to(folder).as_posix())
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return dropped


def _files(folder: Path) -> Iterator[Path]:
    """A stored folder's regular files, never through a link (none when the folder itself
    is one: what a run leaves is copied, never linked, into the store)."""
    if folder.is_symlink():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _manifest(folder: Path) -> tuple[str, int, int]:
    """The sorted ``<sha256>  <path>`` lines of a folder's files, their number and size."""
    lines = []
    size = 0
    for path in _files(folder):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        size += path.stat().st_size
        lines.append(f"{digest.hexdigest()}  {path.relative_to(folder).as_posix()}\n")
    return "".join(sorted(lines, key=lambda line: line[66:])), len(lines), size
