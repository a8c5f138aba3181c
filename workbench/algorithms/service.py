"""The algorithm library (manual chapter 2.2): algorithms and their two images.

An algorithm has a purpose and sub-purpose (as datasets have), and two images, ``train``
and ``predict``, each with the settings it runs with (command, args, typed parameters as
environment variables, CPU or GPU, and the inference API) and, once loaded, the image
itself. An image comes one of three ways, each moving the same states::

    missing ──upload / pull / from a workspace──▶ loading ──▶ ready
                                                          └─▶ failed   (state_reason)

- **upload**: a ``docker save`` tar; **from a workspace**: ``docker_image/<kind>-<name>.tar``
  of a workspace the actor owns or is a member of (its environment becomes the algorithm's
  ``environment_id``). The tar is checked first (:func:`workbench.images.inspect_image_tar`:
  layout, tags, size, config); a tar that fails loads nothing and changes nothing. Then the
  backend loads it, the image (whose id must be the digest of its config) is tagged
  ``workbench/algo-<id>-<kind>:<12 hex of the digest>`` (``image_ref``, what runs), and the
  tar's own tags are taken off again unless they were in the engine before.
- **pull**: ``docker pull`` on a Docker Engine, then tagged the same way.

An image with neither ENTRYPOINT nor CMD needs the settings' command. The checks run in
the request; the load itself is a job (kind ``algorithm-image``,
:mod:`workbench.algorithms.jobs`) that the job runner does in the background, so the
request returns at once with the image "loading" and its ``job_id``. Only one load runs at
a time per image: "loading" is claimed with one ``UPDATE ... WHERE state != 'loading'``. A
load that fails in the engine ends "failed" and keeps the previous image.

The algorithm's state: ``draft ──publish──▶ online ◀──take offline / publish──▶ offline``.
Publishing needs a ready training image with a command (its own or the settings'); only
online algorithms start training tasks, and an online algorithm's images and run settings
do not change (take it offline first). Deleting is refused while training tasks, model
versions or services refer to it; it removes the images it tagged.

An algorithm's lifecycle and its two images' loads share one state machine (publishing
needs a ready image; a load refuses an online algorithm), so their checks stay together
here; the images' rows and settings are in ``images.py``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from workbench.access import EditableService, check_visibility
from workbench.algorithms.images import (
    apply_settings,
    check_settings,
    image_info,
    image_kind,
    image_row,
    image_settings,
    loading_conflict,
    stored_config,
)
from workbench.algorithms.jobs import (
    JOB_KIND,
    TARGET_TYPE,
    UPLOADED_TAR,
    AlgorithmImageKind,
    check_command,
    own_ref,
    remove_image,
)
from workbench.algorithms.params import ImageSettings
from workbench.algorithms.schemas import (
    AlgorithmCreate,
    AlgorithmFilter,
    AlgorithmInfo,
    AlgorithmUpdate,
    ImageInfo,
)
from workbench.backends.base import OnBackend
from workbench.enums import (
    SUB_PURPOSES,
    ImageKind,
    ImageState,
    PublishState,
    Purpose,
    SubPurpose,
    Visibility,
)
from workbench.errors import Conflict, InvalidInput, PermissionDenied
from workbench.images import MAX_IMAGE_BYTES, check_reference, inspect_image_tar
from workbench.jobs.runner import job_folder
from workbench.jobs.service import JobService, left_busy
from workbench.registry.db import Registry
from workbench.registry.models import (
    Algorithm,
    AlgorithmImage,
    ModelVersion,
    Service,
    TrainingTask,
    utcnow,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor, username_of
from workbench.workspaces.builds import IMAGE_FOLDER, parse_tar_name, workspace_tar
from workbench.workspaces.service import WorkspaceService

log = logging.getLogger(__name__)

#: what the settings of an online algorithm's images may not change
_RUN_FIELDS = ("purpose", "sub_purpose", "train", "predict")


@dataclass(eq=False)
class AlgorithmService(EditableService[Algorithm, AlgorithmInfo], OnBackend):
    """The algorithm registry and its images.

    :param max_image_bytes: the largest image tar taken (uploads and workspace tars).
    """

    model = Algorithm
    entity = "algorithm"
    unique_name = "uq_algorithms_owner_id_name"
    name_taken = "There already is an algorithm"
    admin_presets = True
    instead = "register your own with the same images"

    registry: Registry
    store: ArtifactStore
    workspaces: WorkspaceService
    jobs: JobService
    _: KW_ONLY
    max_image_bytes: int = MAX_IMAGE_BYTES

    def __post_init__(self) -> None:
        #: the job kind that loads the images (registered by Workbench)
        self.kind = AlgorithmImageKind(self.registry)

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: AlgorithmFilter | None = None) -> list[AlgorithmInfo]:
        f = filters or AlgorithmFilter()
        if f.visibility == "mine":  # the manual's "my algorithms"
            return self._list(actor, f.model_copy(update={"visibility": None}), mine=True)
        return self._list(actor, f)

    # --- changing -------------------------------------------------------------------------

    def create(self, actor: Actor, spec: AlgorithmCreate) -> AlgorithmInfo:
        check_visibility(actor, spec.visibility)
        _check_purpose(spec.purpose, spec.sub_purpose)
        check_settings(ImageKind.TRAIN, spec.train)
        check_settings(ImageKind.PREDICT, spec.predict)
        with self.registry.session() as s:
            self._check_unique_name(s, actor.id, spec.name)
            row = Algorithm(
                owner_id=actor.id,
                **spec.model_dump(exclude={"train", "predict"}),
                state=PublishState.DRAFT,
            )
            s.add(row)
            self._flush(s, row)
            for kind, settings in (
                (ImageKind.TRAIN, spec.train),
                (ImageKind.PREDICT, spec.predict),
            ):
                image = AlgorithmImage(algorithm_id=row.id, kind=kind, state=ImageState.MISSING)
                apply_settings(image, settings)
                s.add(image)
            s.flush()
            return self._info(s, row)

    def _change(
        self, s: Session, actor: Actor, row: Algorithm, changes: BaseModel, fields: dict[str, Any]
    ) -> None:
        """Run settings only while offline (tasks rely on them), a purpose its sub-purpose
        belongs to, each image's settings checked against its loaded image, then the
        fields."""
        changes = cast(AlgorithmUpdate, changes)
        running = [k for k in _RUN_FIELDS if k in fields]
        if running and row.state == PublishState.ONLINE:
            named = " and ".join(
                f"{k} settings" if k in ("train", "predict") else k for k in running
            )
            raise Conflict(
                f"Algorithm {row.id} is online, so its {named} cannot change (tasks "
                "rely on them): take it offline first, change it, then publish it again.",
                fields=running,
            )
        _check_purpose(changes.purpose or row.purpose, changes.sub_purpose or row.sub_purpose)
        for kind in ImageKind:
            settings: ImageSettings | None = getattr(changes, kind.value)
            if settings is None:
                continue
            check_settings(kind, settings)
            image = image_row(s, row.id, kind)
            check_command(kind, settings, stored_config(image))
            apply_settings(image, settings)
            image.updated_at = utcnow()
        for key in ("name", "description", "purpose", "sub_purpose", "visibility"):
            if key in fields:
                setattr(row, key, getattr(changes, key))
        row.updated_at = utcnow()

    def delete(self, actor: Actor, algorithm_id: int) -> None:
        """Delete the algorithm and the images it tagged; refused while training tasks,
        model versions or services refer to it, and while an image loads."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, algorithm_id)
            images = s.scalars(
                sa.select(AlgorithmImage).where(AlgorithmImage.algorithm_id == algorithm_id)
            ).all()
            if any(image.state == ImageState.LOADING for image in images):
                raise Conflict(
                    f"Algorithm {algorithm_id} is loading an image; delete it once that ended.",
                    algorithm=algorithm_id,
                )
            users = {
                "training_tasks": _ids(s, TrainingTask, algorithm_id),
                "model_versions": _ids(s, ModelVersion, algorithm_id),
                "services": _ids(s, Service, algorithm_id),
            }
            if any(users.values()):
                named = "; ".join(
                    f"{what.replace('_', ' ')} {ids}" for what, ids in users.items() if ids
                )
                raise Conflict(
                    f"Algorithm {algorithm_id} is used by {named}; delete those first (or "
                    "take the algorithm offline: tasks keep their history, new ones refuse "
                    "it).",
                    **users,
                )
            refs = [image.image_ref for image in images if own_ref(algorithm_id, image)]
            s.execute(sa.delete(AlgorithmImage).where(AlgorithmImage.algorithm_id == algorithm_id))
            s.delete(row)
        for ref in refs:
            remove_image(self.backend, ref)

    def publish(self, actor: Actor, algorithm_id: int) -> AlgorithmInfo:
        """Put the algorithm online: new training tasks may use it. Needs a ready training
        image that has a command (its own, or the settings')."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, algorithm_id)
            train = image_row(s, algorithm_id, ImageKind.TRAIN)
            if train.state != ImageState.READY:
                raise Conflict(
                    f"Algorithm {algorithm_id} cannot go online: its training image is "
                    f"{train.state}. Upload it, pull it or publish it from a workspace first"
                    + (
                        f" (the last load failed: {train.state_reason})"
                        if train.state_reason
                        else ""
                    )
                    + ".",
                    train_state=train.state,
                )
            check_command(ImageKind.TRAIN, image_settings(train), stored_config(train))
            row.state = PublishState.ONLINE
            s.flush()
            return self._info(s, row)

    def take_offline(self, actor: Actor, algorithm_id: int) -> AlgorithmInfo:
        """New training tasks refuse an offline algorithm; existing ones keep their history."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, algorithm_id)
            if row.state != PublishState.ONLINE:
                raise Conflict(
                    f"Algorithm {algorithm_id} is {row.state}, not online.", state=row.state
                )
            row.state = PublishState.OFFLINE
            s.flush()
            return self._info(s, row)

    def sync_presets(self, actor: Actor, examples_root: Path) -> list[AlgorithmInfo]:
        """Register one preset algorithm per ``<examples_root>/<name>/algorithm.json`` (admins;
        idempotent): new ones as drafts, existing presets of the same name refreshed
        (description, purpose, settings). Their images come by upload or from a workspace."""
        if not actor.is_admin:
            raise PermissionDenied("Only admins register the preset algorithms; ask one.")
        ids = []
        for path in sorted(examples_root.glob("*/algorithm.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                fields = {k: data[k] for k in AlgorithmCreate.model_fields if k in data}
                spec = AlgorithmCreate.model_validate({**fields, "visibility": Visibility.PRESET})
            except (ValueError, TypeError, ValidationError) as exc:
                raise InvalidInput(f"{path} is not a valid algorithm.json: {exc}") from exc
            with self.registry.session() as s:
                row = s.scalar(
                    sa.select(Algorithm)
                    .where(Algorithm.name == spec.name, Algorithm.visibility == Visibility.PRESET)
                    .order_by(Algorithm.id)
                    .limit(1)
                )
            if row is None:
                ids.append(self.create(actor, spec).id)
                continue
            _check_purpose(spec.purpose, spec.sub_purpose)
            for kind in ImageKind:
                check_settings(kind, getattr(spec, kind.value))
            with self.registry.session() as s:
                row = s.get_one(Algorithm, row.id)
                row.description, row.purpose, row.sub_purpose = (
                    spec.description,
                    spec.purpose,
                    spec.sub_purpose,
                )
                for kind in ImageKind:
                    apply_settings(image_row(s, row.id, kind), getattr(spec, kind.value))
            ids.append(row.id)
        with self.registry.session() as s:
            return [self._info(s, s.get_one(Algorithm, i)) for i in ids]

    # --- images ---------------------------------------------------------------------------

    def reconcile(self) -> list[tuple[int, str]]:
        """Images left "loading" with no job to end them (by a version that loaded in the
        request) end failed, the previous image staying their reference; the (algorithm,
        kind) pairs changed. The job runner takes care of the rest."""
        with self.registry.session() as s:
            stuck = left_busy(s, AlgorithmImage, ImageState.LOADING, TARGET_TYPE)
            for image in stuck:
                image.state = ImageState.FAILED
                image.state_reason = self.kind.interrupted_message
            return [(image.algorithm_id, image.kind) for image in stuck]

    def check_upload(self, actor: Actor, algorithm_id: int, kind: ImageKind | str) -> None:
        """Refuse an image before its bytes arrive (unknown id, not yours, online, loading)."""
        self._loadable(actor, algorithm_id, image_kind(kind))

    def upload_image(
        self,
        actor: Actor,
        algorithm_id: int,
        kind: ImageKind | str,
        archive: StoredFile,
        filename: str = "",
        *,
        wait: bool = True,
    ) -> AlgorithmInfo:
        """Check a ``docker save`` tar and load it (a job; ``wait``: until it is ready,
        raising its error if it fails); ``archive`` (a finished upload) moves into the
        job's folder."""
        detail = filename or f"{archive.size} bytes, sha256 {archive.sha256[:12]}"
        return self._load_tar(
            actor,
            algorithm_id,
            image_kind(kind),
            archive.path,
            "upload",
            detail,
            move=True,
            wait=wait,
        )

    def image_from_workspace(
        self,
        actor: Actor,
        algorithm_id: int,
        kind: ImageKind | str,
        workspace_id: int,
        filename: str,
        *,
        wait: bool = True,
    ) -> AlgorithmInfo:
        """Check ``docker_image/<filename>`` of a workspace the actor owns or is a member of
        (manual 2.6.7) and queue its load; the workspace's environment becomes the
        algorithm's lineage."""
        kind = image_kind(kind)
        workspace = self.workspaces.get(actor, workspace_id)
        named = parse_tar_name(filename)
        if named is None or named[0] != kind.value:
            raise InvalidInput(
                f"{IMAGE_FOLDER}/{filename} cannot be the {kind.value} image: its name must be "
                f"{kind.value}-<name>.tar (lowercase letters and digits separated by single "
                "'.', '_' or '-'). Build it with that name, or rename it.",
                field="filename",
            )
        path = workspace_tar(self.workspaces.folder(workspace_id), filename)
        return self._load_tar(
            actor,
            algorithm_id,
            kind,
            path,
            "workspace",
            f"workspace {workspace_id}: {IMAGE_FOLDER}/{filename}"[:255],
            environment_id=workspace.environment_id,
            wait=wait,
        )

    def pull_image(
        self,
        actor: Actor,
        algorithm_id: int,
        kind: ImageKind | str,
        reference: str,
        *,
        wait: bool = True,
    ) -> AlgorithmInfo:
        """Queue ``docker pull reference`` as the image (a job; a Docker Engine that
        reaches the registry)."""
        kind = image_kind(kind)
        reference = check_reference(reference)
        settings = self._loadable(actor, algorithm_id, kind)
        self.backend.require_pull()
        job_id = self._queue(
            actor,
            algorithm_id,
            kind,
            {
                "source": "pull",
                "reference": reference,
                "detail": reference,
                "settings": settings.model_dump(mode="json"),
            },
        )
        return self._done(actor, algorithm_id, job_id, wait)

    def _load_tar(
        self,
        actor: Actor,
        algorithm_id: int,
        kind: ImageKind,
        path: Path,
        source: str,
        detail: str,
        environment_id: int | None = None,
        *,
        move: bool = False,
        wait: bool = True,
    ) -> AlgorithmInfo:
        settings = self._loadable(actor, algorithm_id, kind)
        tar = inspect_image_tar(path, max_bytes=self.max_image_bytes)
        check_command(kind, settings, tar.config)
        spec = {
            "source": source,
            "detail": detail,
            "path": str(path),
            "digest": tar.digest,
            "tags": list(tar.tags),
            "size": tar.size,
            "config": tar.config.model_dump(mode="json"),
            "environment_id": environment_id,
        }
        job_id = self._queue(actor, algorithm_id, kind, spec, upload=path if move else None)
        return self._done(actor, algorithm_id, job_id, wait)

    def _done(self, actor: Actor, algorithm_id: int, job_id: int, wait: bool) -> AlgorithmInfo:
        if wait:
            self.jobs.wait(job_id, timeout=3600, check=True)
        return self.get(actor, algorithm_id)

    def _queue(
        self,
        actor: Actor,
        algorithm_id: int,
        kind: ImageKind,
        spec: dict[str, Any],
        upload: Path | None = None,
    ) -> int:
        """Claim "loading" atomically and queue the load, in one transaction (an upload's
        tar moves into the job's folder); the job's id."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, algorithm_id)
            _check_not_online(row)
            image = image_row(s, algorithm_id, kind)
            previous = [image.state, image.state_reason]
            claimed = s.execute(
                sa.update(AlgorithmImage)
                .where(AlgorithmImage.id == image.id, AlgorithmImage.state != ImageState.LOADING)
                .values(state=ImageState.LOADING, state_reason="")
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise loading_conflict(algorithm_id, kind)
            job = self.jobs.create(
                s,
                JOB_KIND,
                owner_id=actor.id,
                target_type=TARGET_TYPE,
                target_id=image.id,
                spec={
                    **spec,
                    "algorithm_id": algorithm_id,
                    "kind": kind.value,
                    "previous": previous,
                },
            )
            if upload is not None:
                self.store.publish_file(upload, f"{job_folder(job.id)}/{UPLOADED_TAR}")
            return job.id

    def _loadable(self, actor: Actor, algorithm_id: int, kind: ImageKind) -> ImageSettings:
        """The image's settings, if the actor may load it now (owner, offline, not loading)."""
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, algorithm_id)
            _check_not_online(row)
            image = image_row(s, algorithm_id, kind)
            if image.state == ImageState.LOADING:
                raise loading_conflict(algorithm_id, kind)
            return image_settings(image)

    # --- helpers --------------------------------------------------------------------------

    def _info(self, s: Session, row: Algorithm) -> AlgorithmInfo:
        rows = s.scalars(sa.select(AlgorithmImage).where(AlgorithmImage.algorithm_id == row.id))
        images = {ImageKind(image.kind): image_info(s, image) for image in rows}
        missing = ImageInfo(settings=ImageSettings(), state=ImageState.MISSING)
        return from_row(
            AlgorithmInfo,
            row,
            owner=username_of(s, row.owner_id),
            train=images.get(ImageKind.TRAIN, missing),
            predict=images.get(ImageKind.PREDICT, missing),
        )


# --- module helpers ---------------------------------------------------------------------------


def _check_purpose(purpose: Purpose, sub_purpose: SubPurpose) -> None:
    if sub_purpose not in SUB_PURPOSES[purpose]:
        raise InvalidInput(
            f"Sub-purpose {sub_purpose} does not belong to purpose {purpose}; choose one of: "
            f"{', '.join(SUB_PURPOSES[purpose])}.",
            field="sub_purpose",
        )


def _check_not_online(row: Algorithm) -> None:
    if row.state == PublishState.ONLINE:
        raise Conflict(
            f"Algorithm {row.id} is online, so its images do not change: take it offline "
            "first, load the new image, then publish it again.",
            state=row.state,
        )


def _ids(
    s: Session, model: type[TrainingTask | ModelVersion | Service], algorithm_id: int
) -> list[int]:
    return list(
        s.scalars(
            sa.select(model.id).where(model.algorithm_id == algorithm_id).order_by(model.id)
        ).all()
    )
