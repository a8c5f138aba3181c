"""An algorithm image's load as a job (kind ``algorithm-image``), done in the server by the
job runner (:mod:`workbench.jobs`), so a multi-GB load holds no request thread.

``spec["source"]`` says where the image comes from:

- ``upload``: the ``docker save`` tar the request left at ``jobs/<id>/image.tar``;
  ``workspace``: a workspace's ``docker_image/<kind>-<name>.tar`` (``spec["path"]``).
  Both were checked before the job was queued (:func:`workbench.images.inspect_image_tar`:
  one image, without Workbench's labels). A workspace's tar is first copied into the job's
  folder, never through a link (the workspace's code may change its files at any time);
  the backend loads the tar without its own tags (they could name anyone's image), and the
  image (whose id must be the digest checked, ``spec["digest"]``) is tagged
  ``workbench/algo-<id>-<kind>:<12 hex>``;
- ``pull``: the backend pulls ``spec["reference"]`` (outside Workbench's namespace), the
  image's command and labels are checked, and it is tagged the same way.

While the job is not over the image is ``loading``; it ends ``ready`` (the previous image
this service tagged is removed), ``failed`` with the job's message (the previous image stays
its ``image_ref``), or, when cancelled or the backend cannot load images at all
(:class:`Unsupported`), as it was before (``spec["previous"]``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from workbench.algorithms.params import ImageSettings
from workbench.backends.base import Backend
from workbench.enums import ImageKind, ImageState
from workbench.errors import BackendError, ImageNotFound, InvalidInput, Unsupported
from workbench.images import check_labels, image_config
from workbench.jobs.files import RunOutput
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.states import ACTIVE_JOB_STATES, JobState
from workbench.registry.db import Registry
from workbench.registry.models import Algorithm, AlgorithmImage, Job, utcnow
from workbench.schemas.images import ImageConfig

log = logging.getLogger(__name__)

JOB_KIND = "algorithm-image"
TARGET_TYPE = "algorithm_image"
#: where an upload's tar waits for its job, in the job's folder
UPLOADED_TAR = "image.tar"
#: the tag a loaded image gets: what training tasks and services run
IMAGE_TAG = "workbench/algo-{id}-{kind}:{short}"


def image_tag(algorithm_id: int, kind: ImageKind | str, digest: str) -> str:
    """``workbench/algo-<id>-<kind>:<12 hex of the digest>``."""
    short = digest.split(":")[-1][:12]
    return IMAGE_TAG.format(id=algorithm_id, kind=ImageKind(kind).value, short=short)


def own_ref(algorithm_id: int, image: AlgorithmImage) -> bool:
    """Whether ``image_ref`` is a tag this service made (so it may remove it)."""
    return image.image_ref.startswith(f"workbench/algo-{algorithm_id}-{image.kind}:")


def check_command(kind: ImageKind, settings: ImageSettings, config: ImageConfig | None) -> None:
    """An image without ENTRYPOINT or CMD runs only with the settings' command."""
    if config is not None and not config.has_command and not settings.command:
        raise InvalidInput(
            f"The {kind.value} image has neither an ENTRYPOINT nor a CMD, and the algorithm's "
            f"{kind.value} settings give no command: set the command (e.g. "
            '["python", "train.py"]) or add a CMD to the Dockerfile and build it again.',
            field=f"{kind.value}.command",
        )


def remove_image(backend: Backend, ref: str) -> None:
    try:
        backend.remove_image(ref)
    except BackendError as exc:  # in use by a container, say: harmless to leave
        log.warning("could not remove the image %s: %s", ref, exc.message)


def image_id(backend: Backend, ref: str) -> str | None:
    """The id of the image ``ref`` names in the engine; None if there is none."""
    try:
        return backend.inspect_image(ref).id
    except ImageNotFound:
        return None


class AlgorithmImageKind(JobKind):
    """Loads and pulls of algorithm images (module doc)."""

    name = JOB_KIND
    interrupted_message = "The server stopped while this image was loading; load it again."

    def __init__(self, registry: Registry, *, concurrency: int = 2) -> None:
        self.registry = registry
        self.concurrency = concurrency

    def execute(self, ctx: JobContext) -> Outcome:
        spec = ctx.spec
        algorithm_id, kind = spec["algorithm_id"], ImageKind(spec["kind"])
        if spec["source"] == "pull":
            return self._pull(ctx, algorithm_id, kind)
        path = ctx.folder / UPLOADED_TAR
        if spec["source"] == "workspace":
            _copy_from_workspace(Path(spec["path"]), path, spec["size"])
        backend, digest = ctx.backend, spec["digest"]
        ctx.log(
            f"loading {spec['detail']} ({spec['size']} bytes), image {digest}; its own tags "
            f"({', '.join(spec['tags'])}) are not applied"
        )
        known = image_id(backend, digest) is not None
        target = image_tag(algorithm_id, kind, digest)
        try:
            loaded = backend.load_image(path)
            ctx.progress(0.9)
            if digest not in loaded:
                raise BackendError(
                    f"The engine loaded the tar as {', '.join(loaded) or 'nothing'}, not the "
                    f"image {digest} (the digest of its config, checked before loading): the "
                    "file changed meanwhile. Load it again.",
                    digest=digest,
                    loaded=loaded,
                )
            backend.tag_image(digest, target)
        except BaseException:
            if not known:  # a new image that is not taken: not left in the engine
                remove_image(backend, digest)
            raise
        ctx.log(f"tagged {target}")
        return Outcome(
            f"ready: {target}",
            {"image_ref": target, "digest": digest, "config": spec["config"], "tags": spec["tags"]},
        )

    def _pull(self, ctx: JobContext, algorithm_id: int, kind: ImageKind) -> Outcome:
        backend, reference = ctx.backend, ctx.spec["reference"]
        ctx.log(f"docker pull {reference}")
        existed = image_id(backend, reference)
        ref = backend.pull_image(reference, ctx.log)
        image = backend.inspect_image(ref)
        config = image_config(
            image.entrypoint, image.cmd, image.env, image.exposed_ports, image.labels
        )
        target = image_tag(algorithm_id, kind, image.id)
        try:
            check_labels(image.labels)
            check_command(kind, ImageSettings.model_validate(ctx.spec["settings"]), config)
            backend.tag_image(image.id, target)
        finally:
            if existed is None:  # the pulled tag was not there before: take it off again
                remove_image(backend, ref)
        ctx.log(f"tagged {target}")
        return Outcome(
            f"ready: {target}",
            {
                "image_ref": target,
                "digest": image.id,
                "config": config.model_dump(mode="json"),
                "tags": [ref],
                "size": image.size,
            },
        )

    def sync(self, s: Session, job: Job) -> None:
        image = s.get(AlgorithmImage, job.target_id) if job.target_id is not None else None
        if image is None:
            return
        spec, result = job.spec, job.result
        if job.state in ACTIVE_JOB_STATES:
            image.state, image.state_reason = ImageState.LOADING, ""
        elif job.state == JobState.SUCCEEDED:
            old = image.image_ref if own_ref(spec["algorithm_id"], image) else ""
            image.state, image.state_reason = ImageState.READY, ""
            image.image_ref, image.digest = result["image_ref"], result["digest"]
            image.source, image.source_detail = spec["source"], spec["detail"]
            image.config = {"tags": result["tags"], **result["config"]}
            image.size = result.get("size", spec.get("size", 0))
            image.updated_at = utcnow()
            if spec.get("environment_id") is not None:
                s.get_one(Algorithm, spec["algorithm_id"]).environment_id = spec["environment_id"]
            if old and old != image.image_ref:
                job.result = {**result, "replaced": old}
        elif job.state == JobState.FAILED and job.result.get("error") != Unsupported.code:
            image.state, image.state_reason = ImageState.FAILED, job.message
        else:  # stopped, or nothing could be tried: as it was
            image.state, image.state_reason = spec["previous"]

    def cleanup(self, ctx: JobContext) -> None:
        """The uploaded tar goes; so does the image a successful load replaced."""
        shutil.rmtree(ctx.folder, ignore_errors=True)
        with self.registry.session() as s:
            job = s.get_one(Job, ctx.job_id)
            replaced: Any = job.result.get("replaced") if job.state == JobState.SUCCEEDED else None
        if replaced:
            remove_image(ctx.backend, replaced)


def _copy_from_workspace(source: Path, dest: Path, size: int) -> None:
    """The workspace's tar, copied into the job's folder through descriptors that follow no
    link (:class:`RunOutput`), at most the ``size`` checked: a link put there since the
    check, or a tar grown since, fails the job."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)  # a copy cut short by a restart
    RunOutput(source.parent, "the workspace").copy(source.name, dest, max_bytes=size)
