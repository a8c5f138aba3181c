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
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import get_visible, listing
from workbench.enums import Visibility
from workbench.errors import InvalidInput, NotFound
from workbench.models.evaluation import Evaluation
from workbench.models.schemas import (
    ModelDetail,
    ModelFilter,
    ModelInfo,
    ModelVersionInfo,
    NewVersion,
)
from workbench.registry import Registry
from workbench.registry.models import Model, ModelVersion, User
from workbench.store import ArtifactStore
from workbench.users import Actor

_ATTEMPTS = 5


def version_key(model_id: int, number: int) -> str:
    """The store folder of a version's files."""
    return f"models/{model_id}/versions/{number}"


def staging_key(model_id: int, name: str) -> str:
    return f"models/{model_id}/incoming/{name}"


class ModelService:
    """Models and versions: reading with the visibility rules, and registering."""

    def __init__(self, registry: Registry, store: ArtifactStore) -> None:
        self.registry = registry
        self.store = store

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: ModelFilter | None = None) -> list[ModelInfo]:
        f = filters or ModelFilter()
        query = listing(Model, actor, ((Model.visibility, f.visibility),), mine=f.mine, q=f.q)
        with self.registry.session() as s:
            rows = s.scalars(query.order_by(Model.id.desc())).all()
            return [ModelInfo(**_model_fields(s, row)) for row in rows]

    def get(self, actor: Actor, model_id: int) -> ModelDetail:
        with self.registry.session() as s:
            row = get_visible(s, Model, model_id, actor, "model")
            versions = s.scalars(
                sa.select(ModelVersion)
                .where(ModelVersion.model_id == model_id)
                .order_by(ModelVersion.version)
            ).all()
            return ModelDetail(
                **_model_fields(s, row), versions=[version_info(v) for v in versions]
            )

    def get_version(self, actor: Actor, version_id: int) -> ModelVersionInfo:
        with self.registry.session() as s:
            return version_info(visible_version(s, actor, version_id))

    def files(self, version_id: int) -> Path:
        """The folder of a version's files (no access check: callers did theirs)."""
        with self.registry.session() as s:
            return self.store.path(s.get_one(ModelVersion, version_id).storage_key)

    # --- registering ----------------------------------------------------------------------

    @staticmethod
    def model_for(
        s: Session,
        *,
        name: str,
        owner_id: int,
        visibility: Visibility,
        description: str = "",
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
        model = Model(name=name, owner_id=owner_id, visibility=visibility, description=description)
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
        for attempt in range(_ATTEMPTS):
            moved_to: Path | None = None
            try:
                with self.registry.session() as s:
                    number = 1 + s.scalar(
                        sa.select(sa.func.coalesce(sa.func.max(ModelVersion.version), 0)).where(
                            ModelVersion.model_id == model_id
                        )
                    )
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
                        **lineage.model_dump(),
                    )
                    s.add(version)
                    s.flush()
                    info = version_info(version)
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


def version_info(v: ModelVersion) -> ModelVersionInfo:
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
        created_at=v.created_at,
    )


def _model_fields(s: Session, row: Model) -> dict[str, Any]:
    owner = s.get(User, row.owner_id)
    latest = s.scalar(
        sa.select(ModelVersion)
        .where(ModelVersion.model_id == row.id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "owner": owner.username if owner else "?",
        "visibility": row.visibility,
        "project_id": row.project_id,
        "latest_version": version_info(latest) if latest is not None else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


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
