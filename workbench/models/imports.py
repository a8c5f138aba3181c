"""Imports of models trained elsewhere (``Workbench.model_imports``): what the request and
the upload's first bytes tell is checked at once; the rest in a container of an
environment's image (:class:`~workbench.models.jobs.ImportKind`), whose last step
registers the files as a new version (:mod:`workbench.models.versions`)."""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import check_visibility, get_owned, get_visible, listing
from workbench.backends.base import Backend
from workbench.datasets.archives import extract_archive
from workbench.datasets.types import ArchiveLimits
from workbench.enums import Visibility
from workbench.errors import ImageNotFound, InvalidInput
from workbench.jobs.service import JobService
from workbench.models.conversions import ConversionLimits
from workbench.models.formats import FRAMEWORK, IMPORT_KINDS, parse_signature
from workbench.models.jobs import IMPORT_KIND, ImportKind, refuse_unboxed
from workbench.models.schemas import ImportStarted, ModelImport, NewVersion
from workbench.models.versions import VersionService, drop_links, safe_name
from workbench.registry.db import Registry
from workbench.registry.models import Environment, Model
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor


class ImportService:
    """Imports: checked, queued as a job, registered as a version."""

    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        jobs: JobService,
        versions: VersionService,
        limits: ConversionLimits,
        *,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        """``limits``: the container's, the conversions' (the same object);
        ``archive_limits``: what an imported archive may unpack to."""
        self.registry = registry
        self.store = store
        self.jobs = jobs
        self.versions = versions
        self.limits = limits
        self.archive_limits = archive_limits or ArchiveLimits()
        self.kind = ImportKind(registry, store, self._register_import)

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
            parse_signature(request.signature)
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
            parse_signature(request.signature).model_dump(mode="json") if request.signature else {}
        )
        filename = safe_name(Path(request.filename).name)
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
                        "timeout_s": self.limits.timeout_s,
                    },
                    cpus=self.limits.cpus,
                    memory_mb=self.limits.memory_mb,
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
        info = self.versions.register_version(
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
