"""The job runner: one per server, for every kind of long work (see :mod:`workbench.jobs.kinds`).

One dispatcher thread wakes about every second (at once when a job is queued here), lets
the kinds poll their running container jobs, and starts queued jobs, oldest first:

- a kind runs at most :attr:`JobKind.concurrency` jobs at once on this server;
- a job that asks for CPUs, memory or GPUs (a container's limits) starts only while it fits
  beside the others in the pool (:class:`TrainingLimits`: ``cpus``, ``memory_mb``,
  ``gpus``), and no later job that needs the pool overtakes it, so a large job is not
  starved by small ones; jobs that need nothing of the pool are not held up by it;
- a job is claimed with one ``UPDATE ... WHERE state = 'queued'`` that also records this
  server's ``instance``, so two servers on one registry never both take it, and only the
  claiming server follows, cancels into, or ends it.

Each job then has its own thread: :meth:`JobKind.prepare`, then either
:meth:`JobKind.execute` here or the container on the backend, whose output is copied line
by line into the job's log (``GET /jobs/<id>/log?offset=N`` tails it) until it ends and
:meth:`JobKind.collect` says how it went. The container is removed before the end state is
recorded.

**Restarts.** Stopping the runner (the server shuts down) leaves containers running. The
next runner of the same instance first reconciles: a job whose container still runs is
followed again (the whole log is read again from the backend), one whose container exited
is collected, one whose container is gone ends as its collection recorded, or
:meth:`JobKind.vanished`; a job claimed but not started goes back to the queue; work that
ran in the stopped server ends failed (or is queued again, see
:attr:`JobKind.requeue_interrupted`). Containers of this instance whose job is over are
removed.

Over 600 lines because the dispatcher, the claim, a job's follow, collection and end are
one state machine over the same job rows and locks; split, each part would reach into
the others' state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.backends.base import MANAGED_LABEL, OnBackend, RunInfo, RunState
from workbench.config import TrainingLimits
from workbench.errors import BackendError, Conflict, RunNotFound, WorkbenchError
from workbench.jobs.kinds import JobCancelled, JobContext, JobKind
from workbench.jobs.logs import CappedLog
from workbench.jobs.states import FINISHED_JOB_STATES, LIVE_JOB_STATES, JobState
from workbench.registry.db import Registry
from workbench.registry.models import Job, utcnow
from workbench.store import ArtifactStore

log = logging.getLogger(__name__)

#: labels of a job's container: the kind and the job (beside the instance's MANAGED_LABEL)
KIND_LABEL = "workbench.kind"
JOB_LABEL = "workbench.job"
#: seconds a container gets between SIGTERM and SIGKILL when its job is cancelled
STOP_TIMEOUT = 10
_RETRY_S = 5.0
#: how often (s) a running job's thread asks the registry whether it was cancelled
_CANCEL_POLL_S = 0.2
#: the pending outcome a collection records before it removes the container
_OUTCOME = "outcome"


def job_log_key(job_id: int) -> str:
    """The store key of a job's log unless its kind gave another."""
    return f"jobs/{job_id}/log.txt"


def job_folder(job_id: int) -> str:
    """The store folder of a job's files (an upload waiting for its job, say): the kind's
    :meth:`~JobKind.cleanup` may remove it whole; the log is beside it, not in it."""
    return f"jobs/{job_id}/files"


@dataclass
class _Run:
    """A job this runner handles, from its claim (or adoption) to its end."""

    job_id: int
    kind: str
    cpus: float
    memory_mb: int
    gpus: int
    thread: threading.Thread | None = None

    @property
    def needs_pool(self) -> bool:
        return self.cpus > 0 or self.memory_mb > 0 or self.gpus > 0


@dataclass(eq=False)
class JobRunner(OnBackend):
    """Claims, runs, follows and ends the jobs of one server (see the module doc).

    :param limits: the pool that container jobs' resources must fit in together.
    :param instance: this server's name in ``jobs.instance`` and on its containers
        (``workbench.managed``); a restarted server must keep it to take its jobs up.

    :meth:`start` once; :meth:`stop` is final.
    """

    registry: Registry
    store: ArtifactStore
    _: KW_ONLY
    limits: TrainingLimits
    instance: str
    #: seconds between the dispatcher's rounds
    interval: float = 1.0

    def __post_init__(self) -> None:
        self.kinds: dict[str, JobKind] = {}
        self._runs: dict[int, _Run] = {}
        #: what each queued job waits for, as last written to its message
        self._waiting: dict[int, str] = {}
        self._lock = threading.Lock()
        #: held while a follower writes a line, so that after :meth:`stop` none does
        self._write_lock = threading.Lock()
        self._detached = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, kind: JobKind) -> None:
        if kind.name in self.kinds:
            raise ValueError(f"a job kind named {kind.name!r} is registered already")
        self.kinds[kind.name] = kind

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher; its first round is :meth:`reconcile` (retried each round
        while the backend does not answer)."""
        if self._detached:
            raise RuntimeError("a stopped job runner does not start again; make a new one")
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="workbench-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop dispatching and following; containers go on running (the next runner takes
        them up). Writes to logs and the registry stop before this returns."""
        with self._write_lock:
            self._detached = True
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Dispatch now (a job was queued)."""
        self._wake.set()

    @property
    def started(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_now(self, job_id: int) -> bool:
        """Claim a queued job and do it in this thread, for callers that run no dispatcher
        (a script, a command); False if it was not queued any more (a server took it)."""
        with self.registry.session() as s:
            job = s.get(Job, job_id)
            run = _run_of(job) if job is not None else None
        if run is None or run.kind not in self.kinds or not self._claim(run):
            return False
        with self._lock:
            self._runs[run.job_id] = run
        self._work(run, attach=False)
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> bool:
        """Wait until this runner is done with a job; False if it still goes on here."""
        with self._lock:
            run = self._runs.get(job_id)
        thread = run.thread if run is not None else None
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        reconciled = False
        while not self._stopping.is_set():
            try:
                if not reconciled:
                    self.reconcile()
                    reconciled = True
                self._poll()
                self._dispatch()
            except BackendError as exc:
                log.warning("job runner: the backend failed: %s", exc.message)
            except Exception:
                log.exception("job runner: unexpected error; trying again")
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- reconcile ------------------------------------------------------------------------

    def reconcile(self) -> list[int]:
        """Take up the jobs this instance left unfinished (module doc); their ids."""
        with self.registry.session() as s:
            rows = s.scalars(
                sa.select(Job)
                .where(
                    Job.kind.in_(self.kinds),
                    Job.state.in_(LIVE_JOB_STATES),
                    Job.instance.in_((self.instance, "")),
                )
                .order_by(Job.id)
            ).all()
            live = [(_run_of(job), job.state, job.run_id) for job in rows]
        taken = []
        for run, state, run_id in live:
            with self._lock:
                if run.job_id in self._runs:
                    continue
            taken.append(run.job_id)
            if run_id:
                try:
                    self.backend.status(run_id)
                except RunNotFound:
                    self._end_vanished(run)
                    continue
                self._launch(run, attach=True)
            elif state == JobState.STARTING or (
                state != JobState.STOPPING and self.kinds[run.kind].requeue_interrupted
            ):
                self._requeue(run)
            else:  # work in the server that died with it: over, and its files cleaned up
                kind = self.kinds[run.kind]
                if state == JobState.STOPPING:
                    self._end(run.job_id, JobState.STOPPED, "stopped before it ended")
                else:
                    self._end(run.job_id, JobState.FAILED, kind.interrupted_message)
                self._cleanup(kind, self._context(run.job_id))
        self._remove_orphans()
        return taken

    def _requeue(self, run: _Run) -> None:
        """A job claimed but not started (or whose kind may start over): back to the queue."""
        for info in self.backend.list(self._labels(run)):
            with contextlib.suppress(BackendError):
                self.backend.remove(info.id)
        with self.registry.session() as s:
            job = s.get_one(Job, run.job_id)
            job.state, job.started_at, job.instance, job.progress = JobState.QUEUED, None, "", 0
            self.kinds[job.kind].sync(s, job)

    def _remove_orphans(self) -> None:
        """Remove this instance's job containers whose job is over."""
        backend = self.backend
        found = [
            info
            for kind in list(self.kinds)  # a kind may be registered meanwhile
            for info in backend.list({MANAGED_LABEL: self.instance, KIND_LABEL: kind})
        ]
        if not found:
            return
        with self.registry.session() as s:
            live = set(s.scalars(sa.select(Job.run_id).where(Job.state.in_(LIVE_JOB_STATES))))
        for info in found:
            if info.id not in live:
                with contextlib.suppress(BackendError):
                    backend.remove(info.id)

    def _labels(self, run: _Run) -> dict[str, str]:
        return {MANAGED_LABEL: self.instance, KIND_LABEL: run.kind, JOB_LABEL: str(run.job_id)}

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        with self._lock:
            active = list(self._runs.values())
        with self.registry.session() as s:
            waiting = [
                _run_of(job)
                for job in s.scalars(
                    sa.select(Job)
                    .where(Job.state == JobState.QUEUED, Job.kind.in_(self.kinds))
                    .order_by(Job.created_at, Job.id)
                    .limit(500)
                )
            ]
        limits = self.limits
        pool_blocked = False  # the oldest job that needs the pool waits; nothing overtakes it
        for run in waiting:
            if self._stopping.is_set():
                return
            kind = self.kinds[run.kind]
            if sum(r.kind == run.kind for r in active) >= kind.concurrency:
                self._wait(
                    run,
                    f"waiting: this server runs {kind.concurrency} {run.kind} job(s) at a "
                    "time; it starts when one ends",
                )
                continue
            if run.needs_pool:
                if not _fits(run, [], limits):
                    self._end(
                        run.job_id,
                        JobState.FAILED,
                        f"it asks for more than this server's jobs may use together "
                        f"(cpus {limits.cpus}, memory_mb {limits.memory_mb}, gpus "
                        f"{limits.gpus}); ask for less and retry",
                        only_queued=True,
                    )
                    continue
                if pool_blocked or not _fits(run, active, limits):
                    self._wait(run, _pool_wait(active, limits, behind=pool_blocked))
                    pool_blocked = True
                    continue
            if self._claim(run):
                active.append(run)
                self._launch(run, attach=False)

    def _wait(self, run: _Run, why: str) -> None:
        """Say in a queued job's message what it waits for (written when that changes)."""
        if self._waiting.get(run.job_id) == why:
            return
        self._waiting[run.job_id] = why
        with self.registry.session() as s:
            s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state == JobState.QUEUED)
                .values(message=why)
                .execution_options(synchronize_session=False)
            )

    def _claim(self, run: _Run) -> bool:
        self._waiting.pop(run.job_id, None)
        with self.registry.session() as s:
            claimed = s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state == JobState.QUEUED)
                .values(state=JobState.STARTING, instance=self.instance)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            job = s.get_one(Job, run.job_id)
            s.refresh(job)
            self.kinds[job.kind].sync(s, job)
        return True

    def _launch(self, run: _Run, *, attach: bool) -> None:
        run.thread = threading.Thread(
            target=self._work,
            args=(run, attach),
            name=f"workbench-job-{run.job_id}-{run.kind}",
            daemon=True,
        )
        with self._lock:
            self._runs[run.job_id] = run
        run.thread.start()

    def _poll(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                self.kinds[run.kind].poll(self._context(run.job_id))
            except Exception:
                log.exception("job %s: poll failed", run.job_id)

    # --- one job --------------------------------------------------------------------------

    def _work(self, run: _Run, attach: bool) -> None:
        kind = self.kinds[run.kind]
        ctx = self._context(run.job_id)
        followed = False
        try:
            if attach:
                followed = True
                self._follow(run, ctx, adopted=True)
                return
            spec = kind.prepare(ctx)
            ctx.check()
            if spec is None:
                self._move(run.job_id, JobState.RUNNING, started=True)
                outcome = kind.execute(ctx)
                self._end(run.job_id, JobState.SUCCEEDED, outcome.message, outcome.result)
                return
            spec = replace(spec, labels={**spec.labels, **self._labels(run)})
            try:
                info = self.backend.run(spec)
            except BackendError as exc:
                raise _NotStarted(f"its container did not start: {exc.message}") from exc
            self._move(run.job_id, JobState.RUNNING, started=True, run_id=info.id)
            followed = True
            self._follow(run, ctx, adopted=False)
        except JobCancelled:
            self._end(run.job_id, JobState.STOPPED, "stopped by its owner")
        except WorkbenchError as exc:
            state, message = self._unless_stopping(run.job_id, exc.message)
            details = json.loads(json.dumps(exc.details, default=str))
            self._end(run.job_id, state, message, {"error": exc.code, "details": details})
        except _NotStarted as exc:
            self._end(run.job_id, *self._unless_stopping(run.job_id, str(exc)))
        except Exception:
            log.exception("job %s (%s): unexpected error", run.job_id, run.kind)
            self._end(run.job_id, JobState.FAILED, "internal error; the server log has it")
        finally:
            if not followed and not self._detached:
                self._cleanup(kind, ctx)
            with self._lock:
                self._runs.pop(run.job_id, None)
            self._wake.set()

    def _unless_stopping(self, job_id: int, reason: str) -> tuple[JobState, str]:
        if self._state(job_id) == JobState.STOPPING:
            return JobState.STOPPED, "stopped by its owner"
        return JobState.FAILED, reason

    def _follow(self, run: _Run, ctx: JobContext, *, adopted: bool) -> None:
        """Copy the container's output into the job's log until it ends, then collect."""
        backend = self.backend
        with self.registry.session() as s:
            job = s.get_one(Job, run.job_id)
            run_id, stopping = job.run_id, job.state == JobState.STOPPING
        while True:
            try:
                if stopping:
                    backend.stop(run_id, timeout=STOP_TIMEOUT)
                    stopping = False
                if not self._copy_log(backend.logs, run_id, ctx.log_path):
                    return  # detached
                info = backend.status(run_id)
            except RunNotFound:
                self._end_vanished(run)
                return
            except BackendError as exc:  # the engine went away: follow it again later
                log.warning("job %s: %s; following again", run.job_id, exc.message)
                if self._stopping.wait(_RETRY_S):
                    return
                continue
            if info.state is not RunState.RUNNING:
                break
            if self._stopping.wait(self.interval):  # the output stream broke off early
                return
        self._collect(run, ctx, info, adopted=adopted)

    def _copy_log(self, logs: Callable[..., Iterator[str]], run_id: str, path: Path) -> bool:
        """The backend's whole output into ``path`` (again, after a restart), then the new
        lines as they come; False if the runner stopped meanwhile. Streamed, never held,
        and capped (:class:`CappedLog`: a run may print without end); once the log is full
        the lines are still read, and dropped, until the run ends."""
        history = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        with part.open("wb") as out:
            capped = CappedLog(out)
            for line in logs(run_id):
                history += 1
                capped.write(line)
        with self._write_lock:
            if self._detached:
                part.unlink(missing_ok=True)
                return False
            os.replace(part, path)
        with path.open("ab") as out:
            capped = CappedLog(out)
            for number, line in enumerate(logs(run_id, follow=True)):
                if number < history:
                    continue
                with self._write_lock:
                    if self._detached:
                        return False
                    capped.write(line)
        return not self._detached

    def _collect(self, run: _Run, ctx: JobContext, info: RunInfo, *, adopted: bool) -> None:
        """Record how the container ended, remove it, then end the job.

        Claimed once (``finished_at`` set), unless ``adopted`` from a runner that stopped
        while collecting. The outcome is recorded on the job before the container goes, so
        a restart in between still knows it; the end state comes last."""
        with self.registry.session() as s:
            unclaimed = sa.true() if adopted else Job.finished_at.is_(None)
            claimed = s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state.in_(LIVE_JOB_STATES), unclaimed)
                .values(finished_at=utcnow(), exit_code=info.exit_code)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return
            job = s.get_one(Job, run.job_id)
            state, run_id = job.state, job.run_id
        kind = self.kinds[run.kind]
        end, message, result = JobState.FAILED, "internal error; the server log has it", {}
        try:
            if state == JobState.STOPPING:
                end, message = JobState.STOPPED, "stopped by its owner"
            else:
                outcome = kind.collect(ctx, info)
                end, message, result = JobState.SUCCEEDED, outcome.message, outcome.result
        except WorkbenchError as exc:
            end, message, result = JobState.FAILED, exc.message, {"error": exc.code}
        except Exception:
            log.exception("job %s (%s): collecting failed", run.job_id, run.kind)
        finally:
            with self.registry.session() as s:
                job = s.get_one(Job, run.job_id)
                job.message, job.result = message, {**result, _OUTCOME: end.value}
            try:
                self.backend.remove(run_id)
            except BackendError as exc:
                log.warning("job %s: could not remove %s: %s", run.job_id, run_id, exc)
            self._cleanup(kind, ctx)
        self._end(run.job_id, end, message, result)

    def _end_vanished(self, run: _Run) -> None:
        """The container of a live job is gone: end as its collection recorded, else as
        the kind says."""
        with self.registry.session() as s:
            job = s.get_one(Job, run.job_id)
            recorded, message, result = job.result.get(_OUTCOME), job.message, dict(job.result)
            stopping = job.state == JobState.STOPPING
            if not recorded and job.finished_at is not None and message:
                recorded = JobState.FAILED.value  # collected by a version that kept no outcome
        kind = self.kinds[run.kind]
        ctx = self._context(run.job_id)
        result.pop(_OUTCOME, None)
        if recorded:
            self._end(run.job_id, JobState(recorded), message, result)
        elif stopping:
            self._end(run.job_id, JobState.STOPPED, "stopped by its owner")
        else:
            try:
                outcome = kind.vanished(ctx)
                self._end(run.job_id, JobState.SUCCEEDED, outcome.message, outcome.result)
            except WorkbenchError as exc:
                self._end(run.job_id, JobState.FAILED, exc.message)
        self._cleanup(kind, ctx)

    # --- recording ------------------------------------------------------------------------

    def _context(self, job_id: int) -> JobContext:
        with self.registry.session() as s:
            job = s.get_one(Job, job_id)
            fields = (job.kind, job.owner_id, job.target_type, job.target_id, dict(job.spec))
            log_key = job.log_key or job_log_key(job_id)
        last: dict[str, float] = {"at": 0.0, "progress": -1.0}
        cancelled = {"value": False}

        def is_cancelled() -> bool:
            now = time.monotonic()
            if not cancelled["value"] and now - last["at"] >= _CANCEL_POLL_S:
                last["at"] = now
                cancelled["value"] = self._state(job_id) == JobState.STOPPING
            return cancelled["value"]

        def progress(value: float) -> None:
            if abs(value - last["progress"]) < 0.01 and value < 1:
                return
            last["progress"] = value
            with self.registry.session() as s:
                s.execute(
                    sa.update(Job)
                    .where(Job.id == job_id, Job.state.in_(LIVE_JOB_STATES))
                    .values(progress=value)
                    .execution_options(synchronize_session=False)
                )

        kind, owner_id, target_type, target_id, spec = fields
        return JobContext(
            job_id=job_id,
            kind=kind,
            owner_id=owner_id,
            target_type=target_type,
            target_id=target_id,
            spec=spec,
            folder=self.store.path(job_folder(job_id)),
            log_path=self.store.path(log_key),
            backend=self.backend,
            _cancelled=is_cancelled,
            _progress=progress,
        )

    def _state(self, job_id: int) -> str:
        with self.registry.session() as s:
            return s.scalar(sa.select(Job.state).where(Job.id == job_id)) or ""

    def _move(
        self, job_id: int, state: JobState, *, started: bool = False, run_id: str = ""
    ) -> None:
        """starting -> running (a job whose cancel came meanwhile stays stopping)."""
        with self.registry.session() as s:
            values: dict[str, object] = {"started_at": utcnow()} if started else {}
            if run_id:
                values["run_id"] = run_id
            s.execute(
                sa.update(Job)
                .where(Job.id == job_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            moved = s.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.state == JobState.STARTING)
                .values(state=state)
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                job = s.get_one(Job, job_id)
                s.refresh(job)
                self.kinds[job.kind].sync(s, job)

    def _end(
        self,
        job_id: int,
        state: JobState,
        message: str,
        result: dict[str, object] | None = None,
        *,
        only_queued: bool = False,
    ) -> None:
        """End a job not over yet (``only_queued``: only one still queued), with the kind's
        rows and the log's last line, in one transaction; nothing once detached."""
        with self._write_lock:
            if self._detached:
                return
            with self.registry.session() as s:
                job = s.get(Job, job_id)
                if job is None or job.state in FINISHED_JOB_STATES:
                    return
                if only_queued and job.state != JobState.QUEUED:
                    return
                record_end(s, self.kinds[job.kind], job, state, message, result, self.store)

    def _cleanup(self, kind: JobKind, ctx: JobContext) -> None:
        try:
            kind.cleanup(ctx)
        except Exception:
            log.exception("job %s: cleanup failed", ctx.job_id)


def record_end(
    s: Session,
    kind: JobKind,
    job: Job,
    state: JobState,
    message: str,
    result: dict[str, object] | None,
    store: ArtifactStore,
) -> None:
    """In ``s``: a job's end state, the kind's rows, and the log's last line (the message's
    first line, written before the transaction commits, so a reader that sees the end state
    has the whole log). The caller checked the job was not over (or moved it atomically)."""
    job.state, job.message = state, message
    job.finished_at = job.finished_at or utcnow()
    if result is not None:
        job.result = dict(result)
    if state == JobState.SUCCEEDED:
        job.progress = 1.0
    kind.sync(s, job)
    s.flush()
    path = store.path(job.log_key or job_log_key(job.id))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        first = message.splitlines()[0] if message else ""
        f.write(f"[workbench] job {job.id} {state}: {first}\n")


def check_cancellable(job: Job) -> None:
    if job.state in FINISHED_JOB_STATES:
        raise Conflict(
            f"Job {job.id} is {job.state} already; only a queued or running job can be cancelled.",
            state=job.state,
        )


class _NotStarted(Exception):
    """The job's container could not be started."""


def _run_of(job: Job) -> _Run:
    return _Run(job.id, job.kind, job.cpus, job.memory_mb, job.gpus)


def _pool_wait(active: list[_Run], limits: TrainingLimits, *, behind: bool) -> str:
    """What a job that does not fit in the pool waits for."""
    if behind:
        return "waiting behind an older job that needs the same CPUs, memory or GPUs"
    pool = [r for r in active if r.needs_pool]
    return (
        f"waiting for resources: running jobs use {sum(r.cpus for r in pool):g} of "
        f"{limits.cpus:g} CPUs, {sum(r.memory_mb for r in pool)} of {limits.memory_mb} MiB, "
        f"{sum(r.gpus for r in pool)} of {limits.gpus} GPUs"
    )


def _fits(run: _Run, active: list[_Run], limits: TrainingLimits) -> bool:
    pool = [r for r in active if r.needs_pool]
    return (
        run.cpus + sum(r.cpus for r in pool) <= limits.cpus + 1e-9
        and run.memory_mb + sum(r.memory_mb for r in pool) <= limits.memory_mb
        and run.gpus + sum(r.gpus for r in pool) <= limits.gpus
    )
