"""An environment's image as a job (kind ``environment-image``), done in the server by the
job runner (:mod:`workbench.jobs`), one of three ways (``spec["source"]``):

- ``build``: :class:`EnvBuilder` turns the definition ``spec["definition"]`` into the image
  ``spec["tag"]``, every line into the log as it comes (``Step N/M`` lines set the job's
  progress);
- ``upload``: the ``docker save`` tar the request left at ``jobs/<id>/image.tar`` (checked
  before the job was queued) is loaded; the image is its first tag ``spec["tags"][0]``;
- ``pull``: the backend pulls ``spec["reference"]``.

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

from workbench.backends.base import Backend, Unsupported
from workbench.environments.builder import EnvBuilder
from workbench.environments.definition import load_definition
from workbench.environments.schemas import EnvironmentState
from workbench.jobs import ACTIVE_JOB_STATES, JobContext, JobKind, JobState, Outcome
from workbench.registry.models import Environment, Job

JOB_KIND = "environment-image"
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
            tags = spec["tags"]
            ctx.log(
                f"loading an uploaded docker save tar ({spec['size']} bytes, sha256 "
                f"{spec['sha256'][:12]}) tagged {', '.join(tags)}"
            )
            loaded = backend.load_image(ctx.folder / UPLOADED_TAR)
            ctx.log(f"the engine loaded {', '.join(loaded) or 'no tags'}")
            tag = tags[0]
        else:
            ctx.log(f"docker pull {spec['reference']}")
            tag = backend.pull_image(spec["reference"], ctx.log)
        image = backend.inspect_image(tag)
        return Outcome(f"ready: {tag} ({image.id})", {"image_ref": tag, "image_id": image.id})

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
