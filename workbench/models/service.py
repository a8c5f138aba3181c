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
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import check_visibility, get_owned, get_visible, listing
from workbench.enums import UNFINISHED_TASK_STATES, Visibility
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.models.evaluation import Evaluation
from workbench.models.schemas import (
    ALIAS_PATTERN,
    TAG_KEY_PATTERN,
    ModelDetail,
    ModelFilter,
    ModelInfo,
    ModelUpdate,
    ModelVersionInfo,
    NewVersion,
    VersionComparison,
    VersionUpdate,
)
from workbench.registry import Registry
from workbench.registry.models import (
    Model,
    ModelAlias,
    ModelVersion,
    Service,
    TrainingTask,
    User,
    utcnow,
)
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
        return VersionComparison(
            versions=versions,
            models=models,
            parameters=parameters,
            metrics=metrics,
            differing=differing,
        )

    def archive(self, actor: Actor, version_id: int) -> tuple[Path, str]:
        """A version's native files as a zip in the store's tmp folder (the caller deletes
        it), and the file name to offer."""
        with self.registry.session() as s:
            version = visible_version(s, actor, version_id)
            model = s.get_one(Model, version.model_id)
            folder = self.store.path(version.storage_key)
            name = f"{_safe_name(model.name)}-v{version.version}.zip"
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
        with self.registry.session() as s:
            version = owned_version(s, actor, version_id)
            if change.description is not None:
                version.description = change.description
            s.flush()
            return version_info(version, s)

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
            _forget(s, [version.id])
            s.delete(version)
        if key:
            self.store.delete(key)

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
    services = s.execute(
        sa.select(Service.name, Service.model_version_id).where(Service.model_version_id.in_(ids))
    ).all()
    if services:
        raise Conflict(
            "Services serve this model: "
            + ", ".join(f"{name!r} (version {numbers[v]})" for name, v in services)
            + ". Delete them, or move them to another version, first.",
            services=[name for name, _ in services],
        )
    aliases = s.execute(
        sa.select(ModelAlias.alias, ModelAlias.version_id).where(ModelAlias.version_id.in_(ids))
    ).all()
    if aliases:
        raise Conflict(
            "Aliases point at this version: "
            + ", ".join(f"{alias!r} (version {numbers[v]})" for alias, v in aliases)
            + ". Move them to another version or delete them first.",
            aliases=[alias for alias, _ in aliases],
        )
    tasks = s.execute(
        sa.select(TrainingTask.id, TrainingTask.name).where(
            TrainingTask.base_model_version_id.in_(ids),
            TrainingTask.state.in_(UNFINISHED_TASK_STATES),
        )
    ).all()
    if tasks:
        raise Conflict(
            "Training tasks not finished yet start from this version: "
            + ", ".join(f"{name!r} (task {task_id})" for task_id, name in tasks)
            + ". Let them finish, or change or delete them, first.",
            tasks=[task_id for task_id, _ in tasks],
        )


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


def version_info(v: ModelVersion, s: Session | None = None) -> ModelVersionInfo:
    """A version as the API shows it; with a session, the aliases that point at it."""
    aliases = (
        list(s.scalars(sa.select(ModelAlias.alias).where(ModelAlias.version_id == v.id)))
        if s is not None
        else []
    )
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
        "purpose": row.purpose or "",
        "tags": row.tags or {},
        "aliases": _aliases(s, row.id),
        "latest_version": version_info(latest, s) if latest is not None else None,
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
