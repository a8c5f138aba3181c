"""The model registry (``Workbench.models``): models and their versions as registered,
read with the visibility rules (list with filters and search, detail, compare), and what
their owner changes (edit, tags, aliases, delete).

A model is a shareable thing (owner, visibility); its versions are numbered 1, 2, ... in
the order they were registered (:mod:`workbench.models.versions`), each with its files and
its lineage (task, run, algorithm, dataset, environment, parameters, evaluation, base
version). An alias names one version of a model and moves in one UPDATE; a version is not
deleted while something still uses it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import check_visibility, get_owned, get_visible, listing
from workbench.enums import UNFINISHED_TASK_STATES
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.models.conversions import benchmark_report
from workbench.models.formats import parse_signature
from workbench.models.jobs import formats_key
from workbench.models.schemas import (
    ALIAS_PATTERN,
    TAG_KEY_PATTERN,
    FormatInfo,
    ModelDetail,
    ModelFilter,
    ModelInfo,
    ModelUpdate,
    ModelVersionInfo,
    VersionComparison,
    VersionUpdate,
)
from workbench.models.versions import format_info, owned_version, version_info, visible_version
from workbench.registry.db import Registry
from workbench.registry.models import (
    Model,
    ModelAlias,
    ModelFormat,
    ModelVersion,
    Service,
    TrainingTask,
    User,
    utcnow,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore
from workbench.users import Actor


class ModelService:
    """Models and versions: reading with the visibility rules, editing, deleting."""

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
            reports = [benchmark_report(s, v.id, None, v.default_format) for v in versions]
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
            parse_signature(change.signature).model_dump(mode="json")
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

    # --- tags and aliases -----------------------------------------------------------------

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
        formats[fmt.model_version_id].append(format_info(fmt))
    infos = []
    for row in rows:
        version = latest.get(row.id)
        infos.append(
            from_row(
                ModelInfo,
                row,
                owner=owners.get(row.owner_id, "?"),
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
            )
        )
    return infos
