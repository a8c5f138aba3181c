"""The contract between the job runner and one kind of long work.

A kind is a small class that the area owning the work registers with the runner
(``Workbench.from_settings`` does it); the runner knows no concrete kind. Each job is done
one of two ways, chosen by :meth:`JobKind.prepare`:

- **in the server**: ``prepare`` returns None, then :meth:`JobKind.execute` does the work
  in a thread of the runner (an image build or load, a pull), writing its log and progress
  through the :class:`JobContext`. A server that stops while it runs cannot take it up
  again: the next start of the same server ends it failed, or queues it again when the kind
  sets :attr:`JobKind.requeue_interrupted`.
- **in a container**: ``prepare`` returns a :class:`RunSpec`; the runner starts it on the
  backend (labelled with the job), copies its output into the job's log, re-attaches to it
  after a restart, and when it ends calls :meth:`JobKind.collect` with how it ended.

Either way a kind ends a job by returning an :class:`Outcome` (succeeded) or raising
:class:`JobFailed` or any :class:`WorkbenchError` (failed, with its message). The end state,
the kind's :meth:`JobKind.sync` (which updates the kind's own rows: a task, an environment,
an image) and the last log line are written in one transaction, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from workbench.backends.base import Backend, RunInfo, RunSpec
from workbench.errors import JobFailed
from workbench.jobs.logs import CappedLog
from workbench.registry.models import Job
from workbench.users import Actor


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.check` once the job's owner cancelled it."""


@dataclass
class Outcome:
    """How a job succeeded: its message and its result (stored on the job)."""

    message: str
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """What a kind sees of one job while it runs."""

    job_id: int
    kind: str
    owner_id: int
    target_type: str
    target_id: int | None
    spec: dict[str, Any]
    #: the job's own folder in the store (``jobs/<id>``), made on first use
    folder: Path
    log_path: Path
    backend: Backend
    #: the runner's callbacks: is a cancel asked; record progress 0..1
    _cancelled: Callable[[], bool] = field(repr=False)
    _progress: Callable[[float], None] = field(repr=False)

    def log(self, line: str) -> None:
        """Append one line to the job's log (flushed: readers tail it live), within the
        log's caps (:mod:`workbench.jobs.logs`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as f:
            CappedLog(f).write(line)

    def progress(self, fraction: float) -> None:
        self._progress(min(max(fraction, 0.0), 1.0))

    def cancelled(self) -> bool:
        return self._cancelled()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if a cancel was asked (call it between steps)."""
        if self._cancelled():
            raise JobCancelled


class JobKind:
    """One kind of long work (see the module doc). Override what the kind needs."""

    #: the ``jobs.kind`` value, unique among the registered kinds
    name: ClassVar[str]
    #: at most this many jobs of the kind run at once on one server
    concurrency: int = 1
    #: a job that was running in the server when it stopped is queued again (instead of
    #: ending failed) at the next start; container jobs claimed but not started always are
    requeue_interrupted: ClassVar[bool] = False
    #: why such a job ended failed when the server stopped while it ran here
    interrupted_message: ClassVar[str] = "the server stopped while it ran; start it again"

    def prepare(self, ctx: JobContext) -> RunSpec | None:
        """Get the job ready; the container to run, or None to :meth:`execute` here."""
        return None

    def execute(self, ctx: JobContext) -> Outcome:
        """Do the work in the server (called when :meth:`prepare` returned None)."""
        raise NotImplementedError(f"{type(self).__name__} runs no work in the server")

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        """The job's container ended (``info``: exit code, out-of-memory kill); its outcome.
        Called once, before the container is removed."""
        if info.exit_code == 0:
            return Outcome("the container exited with code 0")
        raise JobFailed(f"the container exited with code {info.exit_code}")

    def vanished(self, ctx: JobContext) -> Outcome:
        """The job's container is gone while the job was not over (removed by hand, or an
        earlier collection was cut short by a restart); its outcome."""
        raise JobFailed("its container is gone (removed while no server followed it?)")

    def poll(self, ctx: JobContext) -> None:
        """Called about every second while a container job runs (read its metrics, say)."""

    def readable(self, s: Session, actor: Actor, job: Job) -> bool:
        """Whether ``actor``, who neither owns the job nor is an admin, may read it and its
        log: whoever may see what it works on (a public task's runs, a preset environment's
        builds, a workspace's builds for its members). Nobody else by default."""
        return False

    def sync(self, s: Session, job: Job) -> None:
        """In every transaction that changes the job's state (create, claim, requeue,
        cancel, end): bring the kind's own rows along (a task's state, an environment's)."""

    def cleanup(self, ctx: JobContext) -> None:
        """After the end: remove what the job no longer needs (its log stays)."""
