"""Jobs as their owners see them: list, read, tail the log, cancel; and the one way an area
queues a job (:meth:`JobService.create`, inside the area's own transaction)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.enums import Role
from workbench.errors import Conflict, InvalidInput, NotFound, RunNotFound
from workbench.jobs.runner import (
    STOP_TIMEOUT,
    JobRunner,
    check_cancellable,
    job_log_key,
    record_end,
)
from workbench.jobs.schemas import JobFilter, JobInfo, JobLogPage, wait_for_job
from workbench.jobs.states import ACTIVE_JOB_STATES, FINISHED_JOB_STATES, JobState
from workbench.registry.models import Base, Job
from workbench.schemas.common import from_row
from workbench.users import Actor, username_of

R = TypeVar("R", bound=Base)


class JobService:
    """Every long operation of this installation, through one runner."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.registry = runner.registry
        self.store = runner.store

    # --- queueing (for the areas) ---------------------------------------------------------

    def create(
        self,
        s: Session,
        kind: str,
        *,
        owner_id: int,
        target_type: str = "",
        target_id: int | None = None,
        spec: dict[str, Any] | None = None,
        cpus: float = 0.0,
        memory_mb: int = 0,
        gpus: int = 0,
        log_key: str = "",
    ) -> Job:
        """Queue a job in the caller's transaction (with the rows it works on); the runner
        is woken when that transaction commits. ``log_key`` (``{id}`` is the job's id)
        defaults to ``jobs/<id>/log.txt``."""
        if kind not in self.runner.kinds:
            raise ValueError(f"no job kind {kind!r} is registered")
        job = Job(
            kind=kind,
            owner_id=owner_id,
            target_type=target_type,
            target_id=target_id,
            state=JobState.QUEUED,
            spec=spec or {},
            cpus=cpus,
            memory_mb=memory_mb,
            gpus=gpus,
        )
        s.add(job)
        s.flush()
        job.log_key = log_key.format(id=job.id) if log_key else job_log_key(job.id)
        path = self.store.path(job.log_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        self.runner.kinds[kind].sync(s, job)
        sa.event.listen(s, "after_commit", lambda _s: self.runner.wake(), once=True)
        return job

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: JobFilter | None = None) -> list[JobInfo]:
        """The actor's jobs, newest first (an admin's ``all``: everyone's)."""
        f = filters or JobFilter()
        if f.all and actor.role is not Role.ADMIN:
            raise InvalidInput("Only admins list every user's jobs; leave `all` out.", field="all")
        query = sa.select(Job)
        if not f.all:
            query = query.where(Job.owner_id == actor.id)
        for column, value in (
            (Job.kind, f.kind),
            (Job.state, f.state),
            (Job.target_type, f.target_type),
            (Job.target_id, f.target_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.registry.session() as s:
            rows = s.scalars(query.order_by(Job.id.desc()).limit(f.limit)).all()
            return [_info(s, row) for row in rows]

    def get(self, actor: Actor, job_id: int) -> JobInfo:
        with self.registry.session() as s:
            return _info(s, self._readable(s, actor, job_id))

    def info(self, job_id: int) -> JobInfo:
        """A job as it is now, for the areas (no access check: they did theirs)."""
        with self.registry.session() as s:
            return _info(s, s.get_one(Job, job_id))

    def tail(self, actor: Actor, job_id: int, offset: int = 0) -> JobLogPage:
        """The log from byte ``offset`` (at most a MiB), in whole lines while it may grow."""
        if offset < 0:
            raise InvalidInput("offset must be >= 0.", field="offset")
        with self.registry.session() as s:
            job = self._readable(s, actor, job_id)
            state, key = JobState(job.state), job.log_key
        data = self.store.read_log(key, offset, live=state not in FINISHED_JOB_STATES)
        return JobLogPage(
            text=data.decode("utf-8", errors="replace"),
            offset=offset,
            next_offset=offset + len(data),
            state=state,
        )

    def wait(
        self, job_id: int, timeout: float = 600, *, check: bool = False, interval: float = 0.05
    ) -> JobInfo:
        """Block until the job is over (in-process callers: scripts, tests); the job. Where
        this process runs no dispatcher, the job is done here, in this thread. With
        ``check``, a failed job raises its error again (the same class, with its message)."""
        if not self.runner.started:
            self.runner.run_now(job_id)
        return wait_for_job(
            lambda: self.info(job_id), timeout=timeout, interval=interval, check=check
        )

    def _readable(self, s: Session, actor: Actor, job_id: int) -> Job:
        """The job if the actor owns it, is an admin, or may see what it works on (its
        kind's :meth:`~workbench.jobs.kinds.JobKind.readable`); 404 otherwise."""
        try:
            return _visible(s, actor, job_id)
        except NotFound:
            job = s.get(Job, job_id)  # the session's, read once
            kind = self.runner.kinds.get(job.kind) if job is not None else None
            if job is None or kind is None or not kind.readable(s, actor, job):
                raise
            return job

    # --- cancelling -----------------------------------------------------------------------

    def cancel(self, actor: Actor, job_id: int) -> JobInfo:
        """Cancel a job of the actor's (an admin: anyone's); see :meth:`stop`."""
        with self.registry.session() as s:
            _visible(s, actor, job_id)
        return self.stop(job_id, f"stopped by {actor.username} before it started")

    def stop(self, job_id: int, queued_reason: str, *, wait: float = 30) -> JobInfo:
        """A queued job ends ``stopped`` at once (with ``queued_reason``); a running one is
        asked to stop (its container gets SIGTERM, SIGKILL after 10 s; work in the server
        stops at its next step) and ends ``stopped``: this waits up to ``wait`` seconds
        for that. :class:`Conflict` if the job is over already. No access check: the
        areas call it after theirs."""
        run_id = self.request_stop(job_id, queued_reason)
        if run_id:
            with contextlib.suppress(RunNotFound):  # the runner records it as gone
                self.runner.backend.stop(run_id, timeout=STOP_TIMEOUT)
        if wait:
            self.runner.wait(job_id, timeout=wait)
        return self.info(job_id)

    def request_stop(self, job_id: int, queued_reason: str) -> str:
        """End a queued job ``stopped``, or move a running one to ``stopping``; the
        container to stop ("" if none). :class:`Conflict` if the job is over."""
        for _ in range(5):  # the runner may move the job on between the read and the write
            with self.registry.session() as s:
                job = s.get_one(Job, job_id)
                check_cancellable(job)
                if job.state == JobState.QUEUED:
                    moved = _move(s, job_id, (JobState.QUEUED,), JobState.STOPPED)
                    if moved:
                        s.refresh(job)
                        kind = self.runner.kinds[job.kind]
                        record_end(s, kind, job, JobState.STOPPED, queued_reason, None, self.store)
                        return ""
                    continue
                if job.state == JobState.STOPPING or _move(
                    s, job_id, (JobState.STARTING, JobState.RUNNING), JobState.STOPPING
                ):
                    s.refresh(job)
                    self.runner.kinds[job.kind].sync(s, job)
                    return job.run_id  # (servers of one registry share one engine)
        raise Conflict(f"Job {job_id} changed state while stopping; try again.")


def _move(s: Session, job_id: int, sources: tuple[JobState, ...], target: JobState) -> bool:
    moved = s.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.state.in_(sources))
        .values(state=target)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1  # type: ignore[attr-defined]


def _visible(s: Session, actor: Actor, job_id: int) -> Job:
    """The job if the actor owns it (admins: any job); 404 otherwise: who may change it."""
    job = s.get(Job, job_id)
    if job is None or (job.owner_id != actor.id and actor.role is not Role.ADMIN):
        raise NotFound.entity("job", job_id)
    return job


def left_busy(s: Session, model: type[R], busy: StrEnum, target_type: str) -> Sequence[R]:
    """The rows of ``model`` in state ``busy`` that no active job of ``target_type`` works
    on: the server stopped while one did, so the area's ``reconcile`` ends them failed."""
    active = sa.select(Job.target_id).where(
        Job.target_type == target_type, Job.state.in_(ACTIVE_JOB_STATES)
    )
    ident, state = model.id, model.state  # type: ignore[attr-defined]
    return s.scalars(sa.select(model).where(state == busy, ident.not_in(active))).all()


def _info(s: Session, job: Job) -> JobInfo:
    return from_row(
        JobInfo,
        job,
        owner=username_of(s, job.owner_id),
        result={k: v for k, v in job.result.items() if k != "outcome"},
    )
