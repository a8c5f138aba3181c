"""An environment's image as a job (kind ``environment-image``), done in the server by the
job runner (:mod:`workbench.jobs`), one of three ways (``spec["source"]``):

- ``build``: :class:`EnvBuilder` turns the definition ``spec["definition"]`` into the image
  ``spec["tag"]``, every line into the log as it comes (``Step N/M`` lines set the job's
  progress);
- ``upload``: the ``docker save`` tar the request left at ``jobs/<id>/image.tar`` (checked
  before the job was queued: one image, ``spec["digest"]``, without Workbench's labels) is
  loaded without its own tags, which could name anyone's image (a preset's); the image is
  tagged ``workbench/env-<id>:<12 hex of its id>`` (:func:`own_tag`);
- ``pull``: the backend pulls ``spec["reference"]`` (outside Workbench's namespace); an
  image carrying Workbench's labels is refused, the pulled name taken off again when it is
  new, and the image tagged as an upload is.

While the job is not over the environment is ``building``; it ends ``ready`` with the new
image, ``failed`` with the job's message (the previous image stays its ``image_ref``), or,
when its owner cancelled it or the backend cannot do it at all (:class:`Unsupported`), in
the state it had before (``spec["previous"]``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from workbench.access import can_see
from workbench.backends.base import Backend
from workbench.environments.builder import EnvBuilder
from workbench.environments.definition import load_definition
from workbench.environments.schemas import EnvironmentState
from workbench.errors import ImageNotFound, JobFailed, Unsupported
from workbench.images import check_labels
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.states import ACTIVE_JOB_STATES, JobState
from workbench.registry.models import Environment, Job
from workbench.users import Actor

JOB_KIND = "environment-image"
#: the tag of an uploaded or pulled image: the environment's own name
OWN_TAG = "workbench/env-{id}:{short}"
TARGET_TYPE = "environment"
#: where an upload's tar waits for its job, in the job's folder
UPLOADED_TAR = "image.tar"
_STEP = re.compile(r"Step (\d+)/(\d+)")


class EnvironmentImageKind(JobKind):
    """Builds, loads and pulls of environment images (module doc)."""

    name = JOB_KIND
    interrupted_message = (
        "The server stopped while the image was being built or loaded; build or upload it again."
    )

    def __init__(
        self,
        envs_root: Path,
        make_builder: Callable[[Backend], EnvBuilder],
        *,
        concurrency: int = 2,
    ) -> None:
        self.envs_root = envs_root
        #: replaceable (tests, a site's wheels folder or CA bundle): read at each build
        self.make_builder = make_builder
        self.concurrency = concurrency

    def execute(self, ctx: JobContext) -> Outcome:
        backend, spec = ctx.backend, ctx.spec
        source = spec["source"]
        if source == "build":
            definition = load_definition(self.envs_root, spec["definition"])
            tag = spec["tag"]
            ctx.log(f"building environment {ctx.target_id} from envs/{definition.name} as {tag}")
            for line in self.make_builder(backend).build(definition, tag):
                ctx.log(line)
                if step := _STEP.search(line):
                    ctx.progress(int(step[1]) / max(int(step[2]), 1) * 0.95)
                ctx.check()
        elif source == "upload":
            digest, tag = spec["digest"], spec["tag"]
            ctx.log(
                f"loading an uploaded docker save tar ({spec['size']} bytes, sha256 "
                f"{spec['sha256'][:12]}), image {digest}; its own tags "
                f"({', '.join(spec['tags'])}) are not applied"
            )
            loaded = backend.load_image(ctx.folder / UPLOADED_TAR)
            if digest not in loaded:
                raise JobFailed(
                    f"The engine loaded {', '.join(loaded) or 'nothing'}, not the image {digest} "
                    "checked before the job (the file changed meanwhile?); upload it again."
                )
            backend.tag_image(digest, tag)
        else:
            tag = self._pull(ctx)
        ctx.log(f"tagged {tag}")
        image = backend.inspect_image(tag)
        return Outcome(f"ready: {tag} ({image.id})", {"image_ref": tag, "image_id": image.id})

    @staticmethod
    def _pull(ctx: JobContext) -> str:
        """Pull the reference and tag the image as the environment's own (module doc)."""
        backend, reference = ctx.backend, ctx.spec["reference"]
        ctx.log(f"docker pull {reference}")
        try:
            existed: str | None = backend.inspect_image(reference).id
        except ImageNotFound:
            existed = None
        ref = backend.pull_image(reference, ctx.log)
        try:
            image = backend.inspect_image(ref)
            check_labels(image.labels)
            tag = own_tag(ctx.target_id or 0, image.id)
            backend.tag_image(image.id, tag)
        finally:
            if existed is None:  # the pulled name was not there before: take it off again
                backend.remove_image(ref)
        return tag

    def readable(self, s: Session, actor: Actor, job: Job) -> bool:
        row = s.get(Environment, job.target_id) if job.target_id is not None else None
        return row is not None and can_see(row, actor)

    def sync(self, s: Session, job: Job) -> None:
        row = s.get(Environment, job.target_id) if job.target_id is not None else None
        if row is None:
            return
        if job.state in ACTIVE_JOB_STATES:
            row.state = EnvironmentState.BUILDING
        elif job.state == JobState.SUCCEEDED:
            row.state, row.state_reason = EnvironmentState.READY, ""
            row.image_ref, row.image_id = job.result["image_ref"], job.result["image_id"]
        elif job.state == JobState.FAILED and job.result.get("error") != Unsupported.code:
            row.state, row.state_reason = EnvironmentState.FAILED, job.message
        else:  # stopped, or nothing could be tried: as it was
            row.state = job.spec.get("previous", EnvironmentState.DRAFT)

    def cleanup(self, ctx: JobContext) -> None:
        shutil.rmtree(ctx.folder, ignore_errors=True)


def own_tag(env_id: int, image_id: str) -> str:
    """``workbench/env-<id>:<12 hex of the image id>``: an uploaded or pulled image's tag."""
    return OWN_TAG.format(id=env_id, short=image_id.split(":")[-1][:12])
