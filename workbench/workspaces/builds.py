"""Image builds from a workspace's code (manual 2.6.4, 2.6.7): a project folder with a
Dockerfile becomes ``docker_image/<kind>-<name>.tar``, the ``docker save`` archive that
publishing an algorithm takes.

    started = builds.build(actor, workspace_id, "bayes-train", "train", "bayes")
    jobs.wait(started.job_id)           # a job (kind ``workspace-build``): its log is the
    # -> <workspace>/docker_image/train-bayes.tar   engine's output, as it comes

The request is checked at once (raising); the build itself is a job of the one runner, so
it is followed, cancelled and read like any long work (``GET /jobs/<id>/log``). One build
of a tar at a time: another of the same tar while one is queued or runs is a
:class:`Conflict`.

The image is built as ``workbench/ws-<id>-<kind>-<name>:latest`` (the tag the tar carries),
saved to a temporary name beside the tar, handed to the workspace's user (uid 1000) when
the server runs as root, renamed into place, and removed from the engine: the tar is the
artifact. A build that fails raises the backend's :class:`BuildFailed` and writes no tar (a
tar of the same name from an earlier build stays as it was). Builds get the workspace's
environment image as the build argument ``WORKBENCH_ENV_IMAGE`` (docs/contracts.md), so a
Dockerfile can start ``FROM ${WORKBENCH_ENV_IMAGE}``.

:meth:`WorkspaceBuilds.inspect_tar` reports what publishing a tar as an algorithm's image
would find (its naming, tags, config, digest, size, problems) without loading it.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from workbench.backends.base import Backend, OnBackend
from workbench.errors import BackendError, Conflict, InvalidInput, NotFound, Unsupported
from workbench.images import MAX_IMAGE_BYTES, ImageTar, inspect_image_tar
from workbench.jobs.files import RunOutput
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.service import JobService
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.registry.models import Environment, Job
from workbench.users import Actor
from workbench.workspaces.schemas import (
    IMAGE_NAME,
    BuildKind,
    ImageTarInfo,
    TarReport,
    WorkspaceBuildRequest,
    WorkspaceBuildStarted,
)
from workbench.workspaces.service import WORKSPACE_UID, WorkspaceService

TAG = "workbench/ws-{workspace}-{kind}-{name}:latest"
IMAGE_FOLDER = "docker_image"
BUILD_KIND = "workspace-build"
TARGET_TYPE = "workspace"
#: the build argument naming the workspace's environment image
ENV_IMAGE_ARG = "WORKBENCH_ENV_IMAGE"
#: the most a project's folder (the build context) may hold
MAX_CONTEXT_BYTES = 8 * 1024**3
#: what a Dockerfile may build FROM: the environment's image, or nothing
_BASES = {f"${ENV_IMAGE_ARG}", f"${{{ENV_IMAGE_ARG}}}", "scratch"}
_TAR_NAME = re.compile(r"^(train|predict)-(.+)\.tar$")


@dataclass(eq=False)
class WorkspaceBuilds(OnBackend):
    """Builds of the workspaces' projects into image tars, on the workspaces' backend.

    :param max_image_bytes: the largest tar :meth:`inspect_tar` finds publishable.
    """

    workspaces: WorkspaceService
    jobs: JobService
    _: KW_ONLY
    max_image_bytes: int = MAX_IMAGE_BYTES

    def __post_init__(self) -> None:
        #: the job kind that builds (registered by Workbench)
        self.kind = WorkspaceBuildKind(self.workspaces)
        self._lock = threading.Lock()

    def build(
        self, actor: Actor, workspace_id: int, project: str, kind: str, name: str
    ) -> WorkspaceBuildStarted:
        """Check the request now (raising), then queue the build as a job.

        The owner and the members of a workspace may build. Raises :class:`NotFound`
        (workspace, project), :class:`InvalidInput` (kind, name, a path leaving ``code/``,
        no Dockerfile), :class:`Unsupported` (a backend without container images) and
        :class:`Conflict` (the same tar queued or being built). The job fails with the
        backend's :class:`BuildFailed` when the build does.
        """
        request = _request(project, kind, name)
        workspace = self.workspaces.get(actor, workspace_id)  # 404 unless owner or member
        root = self.workspaces.folder(workspace_id)
        context = _project_folder(root, request.project)
        backend = self.backend
        if not backend.saves_images:
            raise Unsupported(
                f"building a workspace image into a docker save tar needs Docker; this "
                f"server's backend is {backend.name!r}. Start a Docker Engine "
                "(scripts/docker) and use the docker backend.",
                backend=backend.name,
            )
        env_image = self._environment_image(workspace.environment_id)
        if not env_image:
            raise InvalidInput(
                f"Workspace {workspace_id}'s environment has no image to build FROM; build or "
                "upload the environment's image first.",
                field="environment",
            )
        check_dockerfile((context / "Dockerfile").read_text(encoding="utf-8", errors="replace"))
        path = f"{IMAGE_FOLDER}/{request.kind}-{request.name}.tar"
        spec = {
            "project": request.project,
            "path": path,
            "tag": TAG.format(workspace=workspace_id, kind=request.kind, name=request.name),
            "build_args": {ENV_IMAGE_ARG: env_image},
        }
        with self._lock, self.workspaces.registry.session() as s:
            busy = s.scalars(
                sa.select(Job).where(
                    Job.kind == BUILD_KIND,
                    Job.target_id == workspace_id,
                    Job.state.in_(ACTIVE_JOB_STATES),
                )
            ).all()
            if any(job.spec.get("path") == path for job in busy):
                raise Conflict(
                    f"{path} is being built already; wait for that build to end.", path=path
                )
            job = self.jobs.create(
                s,
                BUILD_KIND,
                owner_id=actor.id,
                target_type=TARGET_TYPE,
                target_id=workspace_id,
                spec=spec,
            )
            return WorkspaceBuildStarted(job_id=job.id, path=path)

    def images(self, actor: Actor, workspace_id: int) -> list[ImageTarInfo]:
        """The tars in ``docker_image/`` (owner and members), by name."""
        self.workspaces.get(actor, workspace_id)
        folder = self.workspaces.folder(workspace_id) / IMAGE_FOLDER
        found = []
        for path in sorted(folder.glob("*.tar")) if folder.is_dir() else ():
            if path.name.startswith(".") or not path.is_file() or path.is_symlink():
                continue
            stat = path.stat()
            match = _TAR_NAME.match(path.name)
            found.append(
                ImageTarInfo(
                    path=f"{IMAGE_FOLDER}/{path.name}",
                    filename=path.name,
                    kind=cast(BuildKind, match.group(1)) if match else None,
                    name=match.group(2) if match else None,
                    size=stat.st_size,
                    modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
        return found

    def inspect_tar(self, actor: Actor, workspace_id: int, filename: str) -> TarReport:
        """Check ``docker_image/<filename>`` the way publishing it would, loading nothing
        (owner and members). Raises :class:`InvalidInput` for a path or a symbolic link and
        :class:`NotFound` for a missing file; everything else is in the report."""
        self.workspaces.get(actor, workspace_id)
        path = workspace_tar(self.workspaces.folder(workspace_id), filename)
        named = parse_tar_name(filename)
        problems = [] if named else [_naming_problem(filename)]
        tar: ImageTar | None = None
        try:
            tar = inspect_image_tar(path, max_bytes=self.max_image_bytes)
        except InvalidInput as exc:
            problems.append(exc.message)
        return TarReport(
            path=f"{IMAGE_FOLDER}/{filename}",
            filename=filename,
            naming_ok=named is not None,
            kind=named[0] if named else None,
            name=named[1] if named else None,
            tags=list(tar.tags) if tar else [],
            digest=tar.digest if tar else "",
            config=tar.config if tar else None,
            size=path.stat().st_size,
            layers=tar.layers if tar else 0,
            problems=problems,
            warnings=[NO_COMMAND] if tar and not tar.config.has_command else [],
            ok=not problems,
        )

    def _environment_image(self, environment_id: int) -> str:
        with self.workspaces.registry.session() as s:
            env = s.get(Environment, environment_id)
            return env.image_ref if env else ""


class WorkspaceBuildKind(JobKind):
    """A workspace build (kind ``workspace-build``), done in the server: a copy of the
    project's folder taken without following a link, ``docker build`` with the
    environment's image as ``WORKBENCH_ENV_IMAGE``, ``docker save`` beside the tar, handed
    to the workspace's user, renamed into place; the image is removed either way."""

    name = BUILD_KIND
    concurrency = 2
    interrupted_message = "The server stopped while this image was being built; build it again."

    def __init__(self, workspaces: WorkspaceService) -> None:
        self.workspaces = workspaces

    def readable(self, s: Session, actor: Actor, job: Job) -> bool:
        try:
            self.workspaces.get(actor, job.target_id or 0)  # its owner and members
        except NotFound:
            return False
        return True

    def execute(self, ctx: JobContext) -> Outcome:
        assert ctx.target_id is not None
        spec = ctx.spec
        root = self.workspaces.folder(ctx.target_id)
        dest = root / spec["path"]
        for line in self._steps(ctx.backend, root, dest, spec):
            ctx.log(line)
            ctx.check()
        size = dest.stat().st_size
        return Outcome(
            f"saved {spec['path']} ({size / 1e6:.1f} MB)", {"path": spec["path"], "size": size}
        )

    def _steps(
        self, backend: Backend, root: Path, dest: Path, spec: dict[str, Any]
    ) -> Iterator[str]:
        project, tag, relative = spec["project"], spec["tag"], spec["path"]
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with self.workspaces.store.staging() as staging:
                # the workspace's code may change while the engine reads it: the build gets
                # a copy of the server's, taken without following a link, checked again
                yield f"copying code/{project} for the build"
                context = staging / "context"
                RunOutput(root, "the workspace").copy(
                    f"code/{Path(project).as_posix()}", context, max_bytes=MAX_CONTEXT_BYTES
                )
                check_dockerfile((context / "Dockerfile").read_text("utf-8", errors="replace"))
                yield f"building code/{project} as {tag}"
                yield from backend.build_image(context, tag, build_args=spec["build_args"])
            yield f"saving {tag} to {relative}"
            if not dest.parent.is_dir():  # deleted meanwhile: make it the workspace's again
                dest.parent.mkdir()
                _give_to_workspace_user(dest.parent)
            backend.save_image(tag, part)
            _give_to_workspace_user(part)
            os.replace(part, dest)  # the job's message says it: "saved <path> (<size>)"
        finally:
            part.unlink(missing_ok=True)
            # the tar is the artifact; an image a container still uses may stay
            with suppress(BackendError):
                backend.remove_image(tag)


_FIX = {
    "project": "give the project's folder relative to code/, e.g. text-classify-bayes-train-demo",
    "kind": "kind is 'train' or 'predict': the tar is named <kind>-<name>.tar",
    "name": "use up to 64 lowercase letters and digits separated by single '.', '_' or '-' "
    "(e.g. text-classify-bayes), not starting or ending with one",
}


NO_COMMAND = (
    "The image has neither an ENTRYPOINT nor a CMD: give the algorithm a command, or add a "
    "CMD to the Dockerfile."
)


def parse_tar_name(filename: str) -> tuple[BuildKind, str] | None:
    """``(kind, name)`` of a ``<kind>-<name>.tar`` that follows the naming; else None."""
    match = _TAR_NAME.match(filename)
    if match is None or len(match.group(2)) > 64 or not re.match(IMAGE_NAME, match.group(2)):
        return None
    return cast(BuildKind, match.group(1)), match.group(2)


def _naming_problem(filename: str) -> str:
    return (
        f"{filename} is not named <kind>-<name>.tar: an algorithm's images are "
        "train-<name>.tar and predict-<name>.tar, <name> being up to 64 lowercase letters and "
        "digits separated by single '.', '_' or '-'. Rename it, or build it again with that "
        "name."
    )


def workspace_tar(root: Path, filename: str) -> Path:
    """``<root>/docker_image/<filename>``: a plain file, named without a path, reached
    through no symbolic link."""
    if (
        not filename
        or filename in (".", "..")
        or "/" in filename
        or "\\" in filename
        or "\x00" in filename
        or filename.startswith(".")
    ):
        raise InvalidInput(
            f"{filename!r} is not a file name of docker_image/; give the tar's name alone, "
            "e.g. train-bayes.tar.",
            field="filename",
        )
    folder = root / IMAGE_FOLDER
    path = folder / filename
    if folder.is_symlink() or path.is_symlink():
        raise InvalidInput(
            f"{IMAGE_FOLDER}/{filename} is a symbolic link; only a real file of "
            f"{IMAGE_FOLDER}/ is taken. Save or copy the tar there.",
            field="filename",
        )
    if not path.is_file():
        raise NotFound(
            f"{IMAGE_FOLDER}/{filename} does not exist in this workspace; build it first, or "
            "list the workspace's images to find its name.",
            kind="image tar",
            id=filename,
        )
    return path


def _request(project: str, kind: str, name: str) -> WorkspaceBuildRequest:
    """The build request, or :class:`InvalidInput` saying what to fix."""
    values = {"project": project, "kind": kind, "name": name}
    try:
        return WorkspaceBuildRequest.model_validate(values)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise InvalidInput(
            f"{field} {values.get(field)!r} is not valid: {_FIX[field]}.", field=field
        ) from exc


def _project_folder(root: Path, project: str) -> Path:
    """``code/<project>`` with a Dockerfile; refuses paths that leave ``code/``."""
    code = (root / "code").resolve()
    relative = Path(project)
    if not project.strip() or relative.is_absolute() or ".." in relative.parts:
        raise InvalidInput(
            f"project {project!r} must be a folder inside code/, given relative to it "
            "(e.g. text-classify-bayes-train-demo).",
            field="project",
        )
    folder = (code / relative).resolve()
    if not folder.is_relative_to(code):
        raise InvalidInput(
            f"project {project!r} leads outside code/ (through a symbolic link); build a "
            "folder that lies inside code/.",
            field="project",
        )
    if not folder.is_dir():
        raise NotFound(
            f"code/{project} does not exist in this workspace; upload or create the project "
            "first (the folders of code/ are the projects).",
            kind="project",
            id=project,
        )
    if not (folder / "Dockerfile").is_file():
        raise InvalidInput(
            f"code/{project} has no Dockerfile, so there is nothing to build; add one (the "
            "sample projects have one to start from).",
            field="project",
        )
    return folder


def check_dockerfile(text: str) -> None:
    """:class:`InvalidInput` unless every stage of the Dockerfile starts ``FROM
    ${WORKBENCH_ENV_IMAGE}`` (the workspace's environment), ``FROM scratch`` or an earlier
    stage, and every ``--from`` names an earlier stage. The engine resolves any other name,
    or a short image id, against every image it holds: another user's algorithm or
    environment image would be copied into this workspace's tar."""
    escape = "\\"
    directive = re.match(r"\s*#\s*escape\s*=\s*(\S)", text)
    if directive:
        escape = directive.group(1)
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith(escape):
            current += stripped[: -len(escape)] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    stages: list[str] = []
    for instruction in logical:
        words = instruction.split()
        keyword = words[0].upper()
        flags = [w for w in words[1:] if w.startswith("--")]
        if keyword == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            base = rest[0] if rest else ""
            if base not in _BASES and base.lower() not in stages:
                raise InvalidInput(
                    f"The Dockerfile builds FROM {base!r}; a workspace's image starts FROM "
                    f"${{{ENV_IMAGE_ARG}}} (its environment's image), FROM scratch, or an earlier "
                    "stage of the same Dockerfile. Install what else it needs in RUN steps.",
                    field="Dockerfile",
                )
            stages.append(rest[2].lower() if len(rest) > 2 and rest[1].upper() == "AS" else "")
        for flag in flags:
            source = _from_of(flag)
            if (
                source is not None
                and source.lower() not in stages
                and not (source.isdigit() and int(source) < len(stages) - 1)
            ):
                raise InvalidInput(
                    f"The Dockerfile's {keyword} takes files from {source!r}; only an earlier "
                    "stage of the same Dockerfile can be named there.",
                    field="Dockerfile",
                )


def _from_of(flag: str) -> str | None:
    """The image or stage a ``--from=X`` (COPY) or ``--mount=...,from=X`` (RUN) names."""
    if flag.startswith("--from="):
        return flag.removeprefix("--from=")
    if flag.startswith("--mount="):
        for part in flag.removeprefix("--mount=").split(","):
            if part.startswith("from="):
                return part.removeprefix("from=")
    return None


def _give_to_workspace_user(path: Path) -> None:
    """The container's user (uid 1000) owns what the server, as root, writes for it."""
    if os.geteuid() == 0:
        os.chown(path, WORKSPACE_UID, WORKSPACE_UID)
