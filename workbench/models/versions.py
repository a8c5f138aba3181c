"""Model versions and their files: registering a folder as a model's next version (training
and imports call it), a version's folder and its download, and the helpers every area
reads versions with (the visibility rules, the API's view of a version, its formats).

A version's files are in the store at ``models/<model>/versions/<number>`` (addressed by
the version, whatever made it). Registering is restart-safe: the files are first put at a
staging key the caller names (``models/<model>/incoming/<name>``), then moved under the
version's key in the transaction that inserts the version, so a version row always has its
files, and a caller cut short may call again with the same staging name (see
:meth:`VersionService.register_version`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import get_owned, get_visible
from workbench.enums import ImageKind, Visibility
from workbench.errors import InvalidInput, NotFound
from workbench.models.formats import FRAMEWORK, native_kind, read_signature
from workbench.models.jobs import formats_key
from workbench.models.schemas import FormatInfo, ModelVersionInfo, NewVersion
from workbench.registry.db import Registry
from workbench.registry.models import (
    AlgorithmImage,
    Environment,
    Model,
    ModelAlias,
    ModelFormat,
    ModelVersion,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore
from workbench.users import Actor

_ATTEMPTS = 5


def version_key(model_id: int, number: int) -> str:
    """The store folder of a version's files."""
    return f"models/{model_id}/versions/{number}"


def staging_key(model_id: int, name: str) -> str:
    return f"models/{model_id}/incoming/{name}"


class VersionService:
    """Registering versions (``Workbench.model_versions``), and reading their files."""

    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        *,
        on_registered: Callable[[ModelVersionInfo], None] | None = None,
    ) -> None:
        """``on_registered``: called with each version just registered (the automatic
        conversion, ``WORKBENCH_AUTO_CONVERT``)."""
        self.registry = registry
        self.store = store
        self.on_registered = on_registered

    def files(self, version_id: int) -> Path:
        """The folder of a version's files (no access check: callers did theirs)."""
        with self.registry.session() as s:
            return self.store.path(s.get_one(ModelVersion, version_id).storage_key)

    def archive(self, actor: Actor, version_id: int, fmt: str | None = None) -> tuple[Path, str]:
        """A version's native files (or one verified format's) as a zip in the store's tmp
        folder (the caller deletes it), and the file name to offer."""
        with self.registry.session() as s:
            version = visible_version(s, actor, version_id)
            model = s.get_one(Model, version.model_id)
            name = f"{safe_name(model.name)}-v{version.version}"
            if fmt is None:
                folder = self.store.path(version.storage_key)
            else:
                verified = verified_formats(s, version_id)
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
                if self.on_registered is not None:
                    self.on_registered(info)
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


def owned_version(s: Session, actor: Actor, version_id: int) -> ModelVersion:
    """The version if the actor owns its model; 404 if they do not see it, 403 if they
    only see it."""
    version = visible_version(s, actor, version_id)
    get_owned(s, Model, version.model_id, actor, "model")
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
        formats = version_formats(s, v.id) if s is not None else []
    return from_row(
        ModelVersionInfo,
        v,
        evaluation=v.evaluation or None,
        description=v.description or "",
        framework=v.framework or "",
        signature=v.signature or {},
        tags=v.tags or {},
        aliases=sorted(aliases),
        formats=formats,
        default_format=v.default_format or "",
        source=v.source or {},
    )


def verified_formats(s: Session, version_id: int) -> dict[str, str]:
    """The version's verified formats: format -> its model file."""
    rows = s.scalars(
        sa.select(ModelFormat).where(
            ModelFormat.model_version_id == version_id, ModelFormat.state == "verified"
        )
    )
    return {row.format: row.file for row in rows}


def version_formats(s: Session, version_id: int) -> list[FormatInfo]:
    rows = s.scalars(
        sa.select(ModelFormat)
        .where(ModelFormat.model_version_id == version_id)
        .order_by(ModelFormat.id)
    ).all()
    return [format_info(row) for row in rows]


def format_info(row: ModelFormat) -> FormatInfo:
    return from_row(FormatInfo, row, check=row.check or {})


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


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


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
