"""Environments (manual chapter 2.5): the base images that workspaces and builds start from.

An environment is a registry row (name, description, framework and version, CPU or GPU,
optionally the preset definition ``envs/<name>/`` it is built from) plus, once it has one,
its image. The image comes one of three ways, each moving the same state machine::

    draft ──build / upload / pull──▶ building ──▶ ready
                                         └─────▶ failed   (state_reason, the log)

- **build**: :class:`EnvBuilder` turns the definition into an image on the backend. Every
  line goes to the job's log as it comes (``GET /jobs/<job_id>/log``, as for any job).
- **upload**: a ``docker save`` tar, checked (``manifest.json``, every config and layer it
  names, at least one tag) before the backend loads anything; the image is its first tag.
- **pull**: ``docker pull`` on a Docker Engine; other backends answer 501 at once.

Each is a job (kind ``environment-image``, :mod:`workbench.environments.jobs`) that the job
runner does in the background: the request returns at once with the environment
"building" and the job's id (``job_id``); ``GET /jobs/<id>`` has its progress and
``GET /jobs/<id>/log`` its log (readable by whoever sees the environment). Only one
runs at a time for an environment: "building" is claimed with one
``UPDATE ... WHERE state != 'building'``, so two requests (or two servers on one registry)
cannot both start. A server that stops during one ends it failed when it starts again. A
failure keeps the previous ``image_ref``: workspaces made from the environment go on
working with the last good image.

Presets are environments with visibility "preset" (only admins set it), one per definition,
registered by :meth:`EnvironmentService.sync_presets`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from workbench.access import EditableService, check_visibility
from workbench.backends.base import Backend, OnBackend
from workbench.enums import Visibility
from workbench.environments.builder import EnvBuilder
from workbench.environments.definition import (
    DESCRIBED,
    EnvDefinition,
    list_definitions,
    load_definition,
)
from workbench.environments.jobs import (
    JOB_KIND,
    OWN_TAG,
    TARGET_TYPE,
    UPLOADED_TAR,
    EnvironmentImageKind,
    own_tag,
)
from workbench.environments.schemas import (
    EnvironmentCreate,
    EnvironmentFilter,
    EnvironmentInfo,
    EnvironmentState,
)
from workbench.errors import BackendError, Conflict, EnvNotFound, InvalidInput, PermissionDenied
from workbench.images import check_reference, inspect_image_tar
from workbench.jobs.runner import job_folder
from workbench.jobs.service import JobService, left_busy
from workbench.registry.db import Registry
from workbench.registry.models import Algorithm, Environment, Job, ModelVersion, Workspace
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor, username_of

log = logging.getLogger(__name__)

#: the image a preset's build makes (the same tag ``workbench environment build-local``
#: makes, so an image built from the command line is adopted by :meth:`sync_presets`)
PRESET_TAG = "workbench/env-{definition}:latest"
#: the image the build of any other environment makes
ENV_TAG = "workbench/env-{definition}:env-{id}"


@dataclass(eq=False)
class EnvironmentService(EditableService[Environment, EnvironmentInfo], OnBackend):
    """The environment registry and its images.

    :param envs_root: the folder of definitions (``envs/``).
    :param make_builder: makes the :class:`EnvBuilder` for a backend; pass one that sets a
        wheels folder, an extra CA bundle or a package index where the site needs them.
    """

    model = Environment
    entity = "environment"
    unique_name = "uq_environments_owner_id_name"
    name_taken = "There already is an environment"
    admin_presets = True
    instead = "create your own from the same definition"

    registry: Registry
    store: ArtifactStore
    jobs: JobService
    _: KW_ONLY
    envs_root: Path
    make_builder: InitVar[Callable[[Backend], EnvBuilder]]

    def __post_init__(self, make_builder: Callable[[Backend], EnvBuilder]) -> None:
        #: the job kind that builds, loads and pulls the images (registered by Workbench);
        #: its ``make_builder`` may be changed later
        self.kind = EnvironmentImageKind(self.envs_root, make_builder)

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: EnvironmentFilter | None = None) -> list[EnvironmentInfo]:
        return self._list(actor, filters or EnvironmentFilter())

    # --- changing -------------------------------------------------------------------------

    def create(self, actor: Actor, spec: EnvironmentCreate) -> EnvironmentInfo:
        check_visibility(actor, spec.visibility)
        fields = spec.model_dump(exclude={"definition"})
        definition = self._definition(spec.definition) if spec.definition else None
        fields = _agree_with(definition, fields)
        if fields["framework"] is None:
            raise InvalidInput(
                "framework is required for an environment without a definition; give it "
                "(python, pytorch, tensorflow, keras, ...) or choose a definition.",
                field="framework",
            )
        with self.registry.session() as s:
            self._check_unique_name(s, actor.id, spec.name)
            row = Environment(
                owner_id=actor.id,
                name=spec.name,
                description=spec.description,
                framework=fields["framework"],
                framework_version=fields["framework_version"] or "",
                device=fields["device"] or "cpu",
                definition=spec.definition or "",
                visibility=spec.visibility,
                state=EnvironmentState.DRAFT,
            )
            return self._added(s, row)

    def _change(
        self, s: Session, actor: Actor, row: Environment, changes: BaseModel, fields: dict[str, Any]
    ) -> None:
        """A definition only while not building; what a definition describes (framework,
        device...) agrees with it; then the fields."""
        new_definition = fields.get("definition", row.definition)
        if new_definition != row.definition:
            _check_not_building(row, "change its definition")
        if new_definition and fields.keys() & {"definition", *DESCRIBED}:
            if new_definition != row.definition:  # the new definition's, unless given
                described = {key: fields.get(key) for key in DESCRIBED}
            else:
                described = {key: fields.get(key, getattr(row, key)) for key in DESCRIBED}
            fields.update(_agree_with(self._definition(new_definition), described))
        super()._change(s, actor, row, changes, fields)

    def delete(self, actor: Actor, env_id: int) -> None:
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, env_id)
            if row.state == EnvironmentState.BUILDING:
                raise Conflict(
                    f"Environment {env_id} is building; delete it once the build has finished.",
                    state=row.state,
                )
            self._check_unused(s, row)
            own_image = row.image_ref if _own_image(row) else ""
            s.delete(row)
        self.store.delete(f"environments/{env_id}")
        if own_image:
            try:
                self.backend.remove_image(own_image)
            except BackendError as exc:  # the row is gone; an image left behind is harmless
                log.warning("environment %s: could not remove %s: %s", env_id, own_image, exc)

    def sync_presets(self, actor: Actor) -> list[EnvironmentInfo]:
        """Register one preset environment per definition in ``envs/`` (admins; idempotent).

        An existing preset gets its description, framework, version and device from its
        definition again; a new one adopts the image ``workbench/env-<name>:latest`` when the
        backend already has it (built with ``workbench environment build-local``).
        """
        if not actor.is_admin:
            raise PermissionDenied(
                "Only admins register the preset environments; ask one to run "
                "`workbench environment sync-presets`."
            )
        ids = []
        for definition in list_definitions(self.envs_root):
            with self.registry.session() as s:
                row = s.scalar(
                    sa.select(Environment)
                    .where(
                        Environment.definition == definition.name,
                        Environment.visibility == Visibility.PRESET,
                    )
                    .order_by(Environment.id)
                    .limit(1)
                )
                if row is None:
                    row = Environment(
                        owner_id=actor.id,
                        name=definition.name,
                        definition=definition.name,
                        visibility=Visibility.PRESET,
                        state=EnvironmentState.DRAFT,
                    )
                    s.add(row)
                row.description = definition.description
                row.framework = definition.framework
                row.framework_version = definition.framework_version
                row.device = definition.device
                self._flush(s, row)  # an environment of the admin's may have the preset's name
                ids.append(row.id)
                adopt = not row.image_ref and row.state == EnvironmentState.DRAFT
            if adopt:
                self._adopt_image(row.id, PRESET_TAG.format(definition=definition.name))
        with self.registry.session() as s:
            return [self._info(s, s.get_one(Environment, i)) for i in ids]

    def reconcile(self) -> list[int]:
        """Mark failed the environments left "building" with no job to end it (by a version
        that built in a thread of its own); their ids. The job runner takes care of the
        rest."""
        with self.registry.session() as s:
            stuck = left_busy(s, Environment, EnvironmentState.BUILDING, TARGET_TYPE)
            for row in stuck:
                row.state, row.state_reason = EnvironmentState.FAILED, self.kind.interrupted_message
            return [row.id for row in stuck]

    # --- images ---------------------------------------------------------------------------

    def build(self, actor: Actor, env_id: int) -> EnvironmentInfo:
        """Build the image from the environment's definition and wait for it (minutes).

        The state ends ready, or failed with the error raised again (the log has the
        details)."""
        self.jobs.wait(self._job_id(self.start_build(actor, env_id)), timeout=3600, check=True)
        return self.get(actor, env_id)

    def start_build(self, actor: Actor, env_id: int) -> EnvironmentInfo:
        """Queue the build (a job); the state is "building" on return. Follow it with the
        job's log (``GET /jobs/<job_id>/log``), or :meth:`wait` for it."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, env_id)
            if not row.definition:
                raise Conflict(
                    f"Environment {env_id} has no definition to build from; upload its image "
                    "(a docker save tar) or pull it, or set a definition first.",
                    environment=env_id,
                )
            definition = self._definition(row.definition)
            spec = {"source": "build", "definition": definition.name, "tag": _env_tag(row)}
            self._queue(s, actor, row, spec)
            return self._info(s, row)

    def wait(self, env_id: int, timeout: float | None = None) -> bool:
        """Wait for the environment's current image job; False if it still runs."""
        with self.registry.session() as s:
            job_id = _current_job(s, env_id)
        if job_id is None:
            return True
        try:
            self.jobs.wait(job_id, timeout=timeout if timeout is not None else 3600)
        except TimeoutError:
            return False
        return True

    def check_upload(self, actor: Actor, env_id: int) -> None:
        """Refuse an image upload before its bytes arrive (unknown id, not yours, building)."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, env_id)
            _check_not_building(row, "upload an image")

    def upload_image(
        self, actor: Actor, env_id: int, archive: StoredFile, *, wait: bool = True
    ) -> EnvironmentInfo:
        """Check a ``docker save`` tar, then load it as the environment's image (a job;
        ``wait``: until it is loaded, raising its error if it fails). ``archive`` (a
        finished upload) moves into the job's folder."""
        self.check_upload(actor, env_id)
        tar = inspect_image_tar(archive.path)
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, env_id)
            spec = {
                "source": "upload",
                "tags": list(tar.tags),
                "digest": tar.digest,
                "tag": own_tag(row.id, tar.digest),
                "size": archive.size,
                "sha256": archive.sha256,
            }
            job = self._queue(s, actor, row, spec)
            self.store.publish_file(archive.path, f"{job_folder(job.id)}/{UPLOADED_TAR}")
        return self._done(actor, env_id, job.id, wait)

    def pull(
        self, actor: Actor, env_id: int, reference: str, *, wait: bool = True
    ) -> EnvironmentInfo:
        """``docker pull reference`` as the image (a job; ``wait``: until it is pulled);
        Docker Engine backends only (the engine needs to reach the image's registry)."""
        reference = check_reference(reference)
        self.check_upload(actor, env_id)
        self.backend.require_pull()
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, env_id)
            job = self._queue(s, actor, row, {"source": "pull", "reference": reference})
        return self._done(actor, env_id, job.id, wait)

    def _queue(self, s: Session, actor: Actor, row: Environment, spec: dict[str, Any]) -> Job:
        """Claim "building" and queue the job, in one transaction."""
        previous = self._claim(s, row)
        return self.jobs.create(
            s,
            JOB_KIND,
            owner_id=actor.id,
            target_type=TARGET_TYPE,
            target_id=row.id,
            spec={**spec, "previous": previous.value},
        )

    def _job_id(self, info: EnvironmentInfo) -> int:
        assert info.job_id is not None
        return info.job_id

    def _done(self, actor: Actor, env_id: int, job_id: int, wait: bool) -> EnvironmentInfo:
        if wait:
            self.jobs.wait(job_id, timeout=3600, check=True)
        return self.get(actor, env_id)

    @staticmethod
    def _claim(s: Session, row: Environment) -> EnvironmentState:
        """Move ``row`` to building, atomically (one request or server wins); the state
        it had."""
        previous = EnvironmentState(row.state)
        claimed = s.execute(
            sa.update(Environment)
            .where(Environment.id == row.id, Environment.state != EnvironmentState.BUILDING)
            .values(state=EnvironmentState.BUILDING)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            _check_not_building(row, "try again", force=True)
        return previous

    def _finish(
        self,
        env_id: int,
        state: EnvironmentState,
        *,
        reason: str | None = None,
        image_ref: str | None = None,
        image_id: str | None = None,
    ) -> None:
        """Set the state (and the image); a failed state keeps its reason unless given."""
        with self.registry.session() as s:
            row = s.get(Environment, env_id)
            if row is None:
                return
            row.state = state
            if state is not EnvironmentState.FAILED:
                row.state_reason = ""
            elif reason is not None:
                row.state_reason = reason
            if image_ref is not None:
                row.image_ref = image_ref
            if image_id is not None:
                row.image_id = image_id

    def _adopt_image(self, env_id: int, tag: str) -> None:
        try:
            image = self.backend.inspect_image(tag)
        except BackendError:  # not built yet, or no engine: it stays a draft
            return
        self._finish(env_id, EnvironmentState.READY, image_ref=tag, image_id=image.id)

    # --- helpers --------------------------------------------------------------------------

    def _definition(self, name: str) -> EnvDefinition:
        try:
            return load_definition(self.envs_root, name)
        except EnvNotFound as exc:
            raise InvalidInput(exc.message, field="definition", known=exc.details["known"]) from exc

    @staticmethod
    def _check_unused(s: Session, row: Environment) -> None:
        def ids(model: type[Workspace] | type[ModelVersion] | type[Algorithm]) -> list[int]:
            return list(
                s.scalars(
                    sa.select(model.id).where(model.environment_id == row.id).order_by(model.id)
                ).all()
            )

        workspaces, algorithms, versions = ids(Workspace), ids(Algorithm), ids(ModelVersion)
        if workspaces or algorithms or versions:
            used = [
                f"{what} {found}"
                for what, found in (
                    ("workspaces", workspaces),
                    ("algorithms", algorithms),
                    ("model versions", versions),
                )
                if found
            ]
            raise Conflict(
                f"Environment {row.id} is used by {' and '.join(used)}; delete those "
                "workspaces first (algorithms and model versions keep it as their lineage, "
                "so an environment they name stays).",
                workspaces=workspaces,
                algorithms=algorithms,
                model_versions=versions,
            )

    def _info(self, s: Session, row: Environment) -> EnvironmentInfo:
        state = EnvironmentState(row.state)
        reason = (row.state_reason or "unknown") if state is EnvironmentState.FAILED else ""
        return from_row(
            EnvironmentInfo,
            row,
            owner=username_of(s, row.owner_id),
            state=state,
            state_reason=reason,
            job_id=_current_job(s, row.id),
        )


def _current_job(s: Session, env_id: int) -> int | None:
    """The environment's latest image job (build, upload or pull)."""
    return s.scalar(
        sa.select(sa.func.max(Job.id)).where(
            Job.target_type == TARGET_TYPE, Job.target_id == env_id
        )
    )


def _own_image(row: Environment) -> bool:
    """Whether the environment's image is a tag this service made for it (so it may go)."""
    return row.image_ref == _env_tag(row) or row.image_ref.startswith(
        OWN_TAG.format(id=row.id, short="")
    )


def _env_tag(row: Environment) -> str:
    if row.visibility is Visibility.PRESET:
        return PRESET_TAG.format(definition=row.definition)
    return ENV_TAG.format(definition=row.definition, id=row.id)


def _check_not_building(row: Environment, what: str, *, force: bool = False) -> None:
    if force or row.state == EnvironmentState.BUILDING:
        raise Conflict(
            f"Environment {row.id} is building its image; wait until it is ready or failed "
            f"(its log shows the progress), then {what}.",
            state=EnvironmentState.BUILDING.value,
        )


def _agree_with(definition: EnvDefinition | None, fields: dict[str, Any]) -> dict[str, Any]:
    """framework, framework_version and device: the definition's where not given, and
    refused where given and different."""
    if definition is None:
        return fields
    result = dict(fields)
    clashes = []
    for key in DESCRIBED:
        theirs = getattr(definition, key)
        if result.get(key) is None:
            result[key] = theirs
        elif result[key] != theirs:
            clashes.append(f"{key} {result[key]!r} (envs/{definition.name} has {theirs!r})")
    if clashes:
        raise InvalidInput(
            f"The definition {definition.name!r} disagrees: {'; '.join(clashes)}. Leave "
            "these fields out to take the definition's values.",
            field="definition",
        )
    return result
