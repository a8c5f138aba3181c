"""The training runner: starts queued runs on the backend, follows them, records how they
ended.

One dispatcher thread per server wakes about every second (at once when a task is queued
here), reads the new lines of the running runs' metrics files into the registry, and
starts queued runs, oldest first, while fewer than ``limits.concurrency`` run here and the
next one's CPUs, memory and GPUs fit beside them (the queue does not skip a task that does
not fit yet: a large task is not starved by small ones). A run is claimed with one
``UPDATE ... WHERE state = 'queued'``, so two servers on one registry never both start it.

Each run then has its own thread:

1. **prepare** (job ``starting``): the dataset view (:mod:`dataset_view`) under
   ``training/<task>/<job>/dataset``, the output folder ``.../output`` (``model/`` inside,
   owned by uid 1000 when the server runs as root), the parameters resolved against the
   algorithm's declarations, the run spec (docs/contracts.md);
2. **run** the algorithm's training image (job ``running``, ``run_id`` = the container);
3. **follow** its output into the store log ``training/<task>/<job>/log.txt``, line by line
   and flushed, so ``GET .../log?offset=N`` tails it live;
4. **collect** the outcome once the output ends: a user's stop -> ``stopped``; an
   out-of-memory kill -> ``failed`` naming the memory limit; a non-zero exit -> ``failed``
   with the code and the last 20 lines; an exit 0 with an empty ``$MODEL_DIR`` -> ``failed``;
   else the model files are published into the store (``models/<model>/job-<job>``) as a
   new :class:`ModelVersion` with its evaluation and lineage -> ``succeeded``. The container
   is removed in every case before the end state is recorded; the log, ``run.json`` (image,
   command, parameters), ``metrics.jsonl`` and ``evaluation.json`` are kept.

**Restarts lose nothing.** Stopping the runner (the server shuts down) leaves the
containers running. :meth:`TrainingRunner.reconcile`, which the next runner does first,
takes up every run left unfinished: one whose container still runs is followed again (the
whole log is read again from the backend), one whose container exited has its outcome
collected, one whose container is gone ends ``failed``, and one claimed but never started
goes back to the queue. Containers of this installation whose run is over are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.algorithms.params import ImageSettings, ParamSpec, resolve_parameters
from workbench.backends.base import (
    MANAGED_LABEL,
    Backend,
    BackendError,
    Limits,
    Mount,
    RunInfo,
    RunNotFound,
    RunSpec,
    RunState,
)
from workbench.config import TrainingLimits
from workbench.enums import ImageKind, TaskState
from workbench.errors import InvalidInput, WorkbenchError
from workbench.registry.models import (
    Algorithm,
    AlgorithmImage,
    Dataset,
    Job,
    Model,
    ModelVersion,
    TrainingMetric,
    TrainingTask,
    utcnow,
)
from workbench.training.dataset_view import DatasetSource, materialize
from workbench.training.evaluation import json_safe, read_evaluation

if TYPE_CHECKING:
    from workbench.training.service import TrainingService

log = logging.getLogger(__name__)

JOB_KIND = "training"
TARGET_TYPE = "training_task"
#: the paths of the contract inside the container
DATASET_DIR = "/workbench/dataset"
OUTPUT_DIR = "/workbench/output"
MODEL_DIR = f"{OUTPUT_DIR}/model"
METRICS_FILE = f"{OUTPUT_DIR}/metrics.jsonl"
EVALUATION_FILE = f"{OUTPUT_DIR}/evaluation.json"
BASE_MODEL_DIR = "/workbench/base_model"
RUN_UID = 1000  # the `workbench` user of every environment image
STOP_TIMEOUT = 10
TAIL_LINES = 20
#: what a run was started with (image, command, parameters), beside its log
RUN_RECORD = "run.json"
_METRICS_CHUNK = 4 * 1024**2
_RETRY_S = 5.0


class JobState:
    """A training job's states: a task's, plus two the task shows as ``running``."""

    QUEUED = "queued"
    STARTING = "starting"  # claimed by a runner; its container is not started yet
    RUNNING = "running"
    STOPPING = "stopping"  # a stop was asked; the container is being stopped
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    LIVE = (STARTING, RUNNING, STOPPING)
    FINISHED = (SUCCEEDED, FAILED, STOPPED)


def run_key(task_id: int, job_id: int) -> str:
    """The store folder of one run: ``log.txt``, ``dataset/``, ``output/``."""
    return f"training/{task_id}/{job_id}"


@dataclass
class _Run:
    """A run this runner handles (from its claim, or its adoption at reconcile, to its end)."""

    job_id: int
    task_id: int
    cpus: float
    memory_mb: int
    gpus: int
    thread: threading.Thread | None = None
    #: the metrics file read so far: bytes, lines, and the last line already stored
    metrics_offset: int = 0
    metrics_lines: int = 0
    stored_seq: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Failure(Exception):
    """A run that ends before or instead of its container, with this reason."""


class TrainingRunner:
    """Starts, follows and finishes the training runs of one server (see the module doc).

    :meth:`start` once; :meth:`stop` is final (a stopped runner leaves its runs to the next
    runner's :meth:`reconcile`).
    """

    def __init__(self, service: TrainingService, *, interval: float = 1.0) -> None:
        self.service = service
        #: seconds between the dispatcher's rounds (metrics are read each round)
        self.interval = interval
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        #: held while a follower writes a line, so that after :meth:`stop` none does
        self._write_lock = threading.Lock()
        self._detached = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def limits(self) -> TrainingLimits:
        return self.service.limits

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher; its first round is :meth:`reconcile` (retried each round
        while the backend does not answer)."""
        if self._detached:
            raise RuntimeError("a stopped training runner does not start again; make a new one")
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="workbench-training-runner", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop dispatching and following; the containers go on running (the next runner
        takes them up). Writes to logs and the registry stop before this returns."""
        with self._write_lock:
            self._detached = True
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Dispatch now (a task was queued)."""
        self._wake.set()

    def wait(self, job_id: int | None, timeout: float | None = None) -> bool:
        """Wait until this runner is done with a run; False if it still goes on."""
        with self._lock:
            run = self._runs.get(job_id) if job_id is not None else None
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
                self._read_all_metrics()
                self._dispatch()
            except BackendError as exc:
                log.warning("training runner: the backend failed: %s", exc.message)
            except Exception:
                log.exception("training runner: unexpected error; trying again")
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- reconcile ------------------------------------------------------------------------

    def reconcile(self) -> list[int]:
        """Take up the runs a stopped server left unfinished (module doc); their job ids."""
        backend = self.service.backend
        with self.service.registry.session() as s:
            rows = s.execute(
                sa.select(Job, TrainingTask)
                .join(TrainingTask, TrainingTask.id == Job.target_id)
                .where(
                    Job.kind == JOB_KIND,
                    Job.target_type == TARGET_TYPE,
                    Job.state.in_(JobState.LIVE),
                )
                .order_by(Job.id)
            ).all()
            live = [(job.id, job.state, job.run_id, _run_of(job, task)) for job, task in rows]
        taken = []
        for job_id, state, run_id, run in live:
            with self._lock:
                if job_id in self._runs:
                    continue
            if not run_id:
                self._requeue(job_id, state, backend)
            else:
                try:
                    backend.status(run_id)
                except RunNotFound:
                    self._end(run, *self._vanished(run))
                    continue
                self._launch_thread(run, attach=True)
            taken.append(job_id)
        self._remove_orphans(backend)
        return taken

    def _requeue(self, job_id: int, state: str, backend: Backend) -> None:
        """A run claimed but not started: back to the queue (stopped, if a stop came)."""
        for info in backend.list(self._labels(job_id)):
            with contextlib.suppress(BackendError):
                backend.remove(info.id)
        with self.service.registry.session() as s:
            job = s.get_one(Job, job_id)
            task = s.get(TrainingTask, job.target_id)
            current = task is not None and task.job_id == job.id
            if state == JobState.STOPPING:
                reason = "stopped before its container started"
                job.state, job.message, job.finished_at = JobState.STOPPED, reason, utcnow()
                if current and task is not None:
                    task.state, task.state_reason = TaskState.STOPPED, reason
                return
            job.state, job.started_at = JobState.QUEUED, None
            if current and task is not None:
                task.state = TaskState.QUEUED

    def _remove_orphans(self, backend: Backend) -> None:
        """Remove this installation's training containers whose run is over."""
        found = backend.list({MANAGED_LABEL: self.service.instance, "workbench.kind": JOB_KIND})
        if not found:
            return
        with self.service.registry.session() as s:
            live = set(
                s.scalars(
                    sa.select(Job.run_id).where(Job.kind == JOB_KIND, Job.state.in_(JobState.LIVE))
                ).all()
            )
        for info in found:
            if info.id not in live:
                with contextlib.suppress(BackendError):
                    backend.remove(info.id)

    def _labels(self, job_id: int) -> dict[str, str]:
        return {
            MANAGED_LABEL: self.service.instance,
            "workbench.kind": JOB_KIND,
            "workbench.job": str(job_id),
        }

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        with self._lock:
            active = list(self._runs.values())
        limits = self.limits
        if len(active) >= limits.concurrency:
            return
        with self.service.registry.session() as s:
            queued = s.execute(
                sa.select(Job, TrainingTask)
                .join(TrainingTask, TrainingTask.job_id == Job.id)
                .where(TrainingTask.state == TaskState.QUEUED, Job.state == JobState.QUEUED)
                .order_by(Job.created_at, Job.id)
            ).all()
            waiting = [_run_of(job, task) for job, task in queued]
        for run in waiting:
            if self._stopping.is_set() or len(active) >= limits.concurrency:
                return
            if not _fits(run, [], limits):
                self._end(
                    run,
                    JobState.FAILED,
                    f"it asks for more than this server's training runs may use together "
                    f"(cpus {limits.cpus}, memory_mb {limits.memory_mb}, gpus {limits.gpus}); "
                    "ask for less and retry",
                    claimed=False,
                )
                continue
            if not _fits(run, active, limits):
                return  # the oldest waits for room; nothing overtakes it
            if self._claim(run):
                active.append(run)
                self._launch_thread(run, attach=False)

    def _claim(self, run: _Run) -> bool:
        with self.service.registry.session() as s:
            claimed = s.execute(
                sa.update(TrainingTask)
                .where(
                    TrainingTask.id == run.task_id,
                    TrainingTask.job_id == run.job_id,
                    TrainingTask.state == TaskState.QUEUED,
                )
                .values(state=TaskState.RUNNING, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state == JobState.QUEUED)
                .values(state=JobState.STARTING)
                .execution_options(synchronize_session=False)
            )
        return True

    def _launch_thread(self, run: _Run, *, attach: bool) -> None:
        with self.service.registry.session() as s:
            run.stored_seq = s.scalar(
                sa.select(sa.func.coalesce(sa.func.max(TrainingMetric.seq), -1)).where(
                    TrainingMetric.job_id == run.job_id
                )
            )
        run.thread = threading.Thread(
            target=self._run,
            args=(run, attach),
            name=f"workbench-training-{run.job_id}",
            daemon=True,
        )
        with self._lock:
            self._runs[run.job_id] = run
        run.thread.start()

    # --- one run --------------------------------------------------------------------------

    def _run(self, run: _Run, attach: bool) -> None:
        try:
            if attach or self._launch(run):
                self._follow(run, adopted=attach)
        except Exception:
            log.exception("training run %s: unexpected error", run.job_id)
            if not self._detached:
                self._end(run, JobState.FAILED, "internal error; the server log has the details")
        finally:
            with self._lock:
                self._runs.pop(run.job_id, None)
            self._wake.set()

    def _launch(self, run: _Run) -> bool:
        """Prepare and start the container; False if the run ended before it started."""
        folder = self.service.store.path(run_key(run.task_id, run.job_id))
        try:
            spec = self._prepare(run, folder)
        except (_Failure, WorkbenchError, OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, _Failure | OSError | ValueError) else exc.message
            self._cleanup(folder)
            self._end(run, *self._unless_stopping(run, f"could not prepare the run: {reason}"))
            return False
        if self._job_state(run) == JobState.STOPPING:
            self._cleanup(folder)
            self._end(run, JobState.STOPPED, "stopped before its container started")
            return False
        backend = self.service.backend
        try:
            info = backend.run(spec)
        except BackendError as exc:
            self._cleanup(folder)
            self._end(
                run, *self._unless_stopping(run, f"its container did not start: {exc.message}")
            )
            return False
        with self.service.registry.session() as s:
            s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id)
                .values(run_id=info.id, started_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state == JobState.STARTING)
                .values(state=JobState.RUNNING)
                .execution_options(synchronize_session=False)
            )
        return True

    def _unless_stopping(self, run: _Run, reason: str) -> tuple[str, str]:
        if self._job_state(run) == JobState.STOPPING:
            return JobState.STOPPED, "stopped before its container started"
        return JobState.FAILED, reason

    def _prepare(self, run: _Run, folder: Path) -> RunSpec:
        service = self.service
        with service.registry.session() as s:
            task = s.get_one(TrainingTask, run.task_id)
            algorithm = s.get_one(Algorithm, task.algorithm_id)
            image = s.scalar(
                sa.select(AlgorithmImage).where(
                    AlgorithmImage.algorithm_id == algorithm.id,
                    AlgorithmImage.kind == ImageKind.TRAIN,
                )
            )
            if image is None or not image.image_ref:
                raise _Failure(f"algorithm {algorithm.id} ({algorithm.name}) has no train image")
            settings = ImageSettings(
                command=image.command,
                args=image.args,
                env={k: ParamSpec.model_validate(v) for k, v in image.env.items()},
                device="gpu" if image.device == "gpu" else "cpu",
            )
            dataset = s.get_one(Dataset, task.dataset_id)
            splits = {split.split.value: split.storage_key for split in dataset.splits}
            source = DatasetSource(
                name=dataset.name,
                format=dataset.format,
                split_mode=dataset.split_mode,
                train=service.store.path(splits["train"]),
                test=service.store.path(splits["test"]) if "test" in splits else None,
            )
            base_key = ""
            if task.base_model_version_id is not None:
                base = s.get_one(ModelVersion, task.base_model_version_id)
                base_key = base.storage_key
            train_ratio, parameters = task.train_ratio, dict(task.parameters)
            image_ref, gpus = image.image_ref, task.gpus
        env = resolve_parameters(settings.env, parameters)
        shutil.rmtree(folder, ignore_errors=True)  # a run claimed again after a restart
        view = materialize(
            source, folder / "dataset", train_ratio=train_ratio, seed=str(run.task_id)
        )
        output = folder / "output"
        (output / "model").mkdir(parents=True)
        _give_to_run_user(output)
        local = service.backend.name == "local"  # no mount targets: the real paths

        def inside(path: Path, target: str) -> str:
            return str(path) if local else target

        base_path = service.store.path(base_key) if base_key else None
        mounts = [
            Mount(folder / "dataset", inside(folder / "dataset", DATASET_DIR), read_only=True),
            Mount(output, inside(output, OUTPUT_DIR)),
        ]
        if base_path is not None:
            mounts.append(Mount(base_path, inside(base_path, BASE_MODEL_DIR), read_only=True))
        contract = {
            "DATASET_DIR": inside(folder / "dataset", DATASET_DIR),
            "DATASET_FORMAT": view["format"],
            "OUTPUT_DIR": inside(output, OUTPUT_DIR),
            "MODEL_DIR": inside(output / "model", MODEL_DIR),
            "METRICS_FILE": inside(output / "metrics.jsonl", METRICS_FILE),
            "EVALUATION_FILE": inside(output / "evaluation.json", EVALUATION_FILE),
            "BASE_MODEL_DIR": inside(base_path, BASE_MODEL_DIR) if base_path else "",
        }
        command = (*settings.command, *settings.args)
        record = {"image": image_ref, "command": list(command) or None, "parameters": env}
        (folder / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return RunSpec(
            name=f"workbench-train-{run.task_id}-{run.job_id}-{secrets.token_hex(3)}",
            image=image_ref,
            command=command or None,
            env={
                "DEVICE": "cuda" if gpus > 0 else "cpu",
                "PYTHONUNBUFFERED": "1",  # print() reaches the log as it happens
                **env,
                **contract,
            },
            mounts=tuple(mounts),
            limits=Limits(cpus=run.cpus, memory_mb=run.memory_mb, gpus=run.gpus),
            labels={**self._labels(run.job_id), "workbench.task": str(run.task_id)},
            user=f"{RUN_UID}:{RUN_UID}",
        )

    def _follow(self, run: _Run, *, adopted: bool) -> None:
        """Write the container's output into the run's log until it ends, then collect."""
        backend = self.service.backend
        with self.service.registry.session() as s:
            job = s.get_one(Job, run.job_id)
            run_id, log_key, stopping = job.run_id, job.log_key, job.state == JobState.STOPPING
        path = self.service.store.path(log_key)
        while True:
            try:
                if stopping:
                    backend.stop(run_id, timeout=STOP_TIMEOUT)
                    stopping = False
                if not self._copy_log(backend.logs, run_id, path):
                    return  # detached
                info = backend.status(run_id)
            except RunNotFound:
                self._read_metrics(run, final=True)
                self._end(run, *self._vanished(run))
                return
            except BackendError as exc:  # the engine went away: follow it again later
                log.warning("training run %s: %s; following again", run.job_id, exc.message)
                if self._stopping.wait(_RETRY_S):
                    return
                continue
            if info.state is not RunState.RUNNING:
                break
            if self._stopping.wait(self.interval):  # the output stream broke off early
                return
        self._read_metrics(run, final=True)
        self._collect(run, info, adopted=adopted)

    def _copy_log(self, logs: Callable[..., Iterator[str]], run_id: str, path: Path) -> bool:
        """The backend's whole output into ``path`` (again, after a restart), then the new
        lines as they come; False if the runner stopped meanwhile."""
        history = list(logs(run_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        part.write_text("".join(f"{line}\n" for line in history), encoding="utf-8")
        with self._write_lock:
            if self._detached:
                part.unlink(missing_ok=True)
                return False
            os.replace(part, path)
        with path.open("a", encoding="utf-8") as out:
            for number, line in enumerate(logs(run_id, follow=True)):
                if number < len(history):
                    continue
                with self._write_lock:
                    if self._detached:
                        return False
                    out.write(f"{line}\n")
                    out.flush()
        return not self._detached

    def _collect(self, run: _Run, info: RunInfo, *, adopted: bool) -> None:
        """Record how the run ended, remove its container, then end the job and the task.

        Claimed once (``finished_at`` set), unless ``adopted`` from a runner that stopped
        while collecting. The outcome is kept in the job's message before the container
        goes, so a restart in between still knows it (:meth:`_vanished`); the end state
        comes last, once nothing of the run is left running."""
        with self.service.registry.session() as s:
            unclaimed = sa.true() if adopted else Job.finished_at.is_(None)
            claimed = s.execute(
                sa.update(Job)
                .where(Job.id == run.job_id, Job.state.in_(JobState.LIVE), unclaimed)
                .values(finished_at=utcnow(), exit_code=info.exit_code)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return
            job = s.get_one(Job, run.job_id)
            state, run_id, log_key = job.state, job.run_id, job.log_key
        folder = self.service.store.path(run_key(run.task_id, run.job_id))
        try:
            outcome, reason = self._outcome(run, info, state, folder, log_key)
            with self.service.registry.session() as s:
                s.execute(
                    sa.update(Job)
                    .where(Job.id == run.job_id)
                    .values(message=reason)
                    .execution_options(synchronize_session=False)
                )
        finally:
            try:
                self.service.backend.remove(run_id)
            except BackendError as exc:
                log.warning("training run %s: could not remove %s: %s", run.job_id, run_id, exc)
            self._cleanup(folder)
        self._end(run, outcome, reason)

    def _vanished(self, run: _Run) -> tuple[str, str]:
        """How a run whose container is gone ended: as recorded before its removal when a
        collection got that far, else failed."""
        with self.service.registry.session() as s:
            job = s.get_one(Job, run.job_id)
            version = s.scalar(sa.select(ModelVersion).where(ModelVersion.job_id == job.id))
            if version is not None:
                return JobState.SUCCEEDED, f"model {version.model_id} version {version.version}"
            if job.state == JobState.STOPPING:
                return JobState.STOPPED, "stopped by its owner"
            if job.finished_at is not None and job.message:
                return JobState.FAILED, job.message
        return (
            JobState.FAILED,
            "the container is gone (removed while no server followed it?); retry the task",
        )

    def _outcome(
        self, run: _Run, info: RunInfo, state: str, folder: Path, log_key: str
    ) -> tuple[str, str]:
        model_dir = folder / "output" / "model"
        code = info.exit_code
        if state == JobState.STOPPING:
            return JobState.STOPPED, "stopped by its owner"
        if info.oom_killed:
            return (
                JobState.FAILED,
                f"killed: out of memory (the task's limit is {run.memory_mb} MiB). Give the "
                f"task more memory_mb (at most {self.limits.memory_mb} here), or make the run "
                "use less (a smaller BATCH_SIZE or IMG_SIZE, fewer samples in memory).",
            )
        if code != 0:
            hint = f" (137: killed, often for going over the {run.memory_mb} MiB memory limit)"
            return (
                JobState.FAILED,
                f"exited with code {code}{hint if code == 137 else ''}; the last log lines:\n"
                + "\n".join(_tail(self.service.store.path(log_key), TAIL_LINES)),
            )
        if not _has_files(model_dir) and not self._published(run):
            return (
                JobState.FAILED,
                f"exited with code 0 but wrote no model into $MODEL_DIR ({MODEL_DIR}); the "
                "training code must save its model files there.",
            )
        try:
            return JobState.SUCCEEDED, self._register(run, model_dir, folder, log_key)
        except (WorkbenchError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.exception("training run %s: the model was not registered", run.job_id)
            why = exc.message if isinstance(exc, WorkbenchError) else type(exc).__name__
            return JobState.FAILED, f"the model could not be registered ({why}); retry the task"

    def _published(self, run: _Run) -> bool:
        """Whether an earlier collection (cut short by a restart) published the model."""
        with self.service.registry.session() as s:
            model_id = s.scalar(
                sa.select(TrainingTask.model_id).where(TrainingTask.id == run.task_id)
            )
        return model_id is not None and self.service.store.exists(_model_key(model_id, run.job_id))

    def _register(self, run: _Run, model_dir: Path, folder: Path, log_key: str) -> str:
        """Publish the model files as a new version of the task's model (with the run's
        evaluation and lineage); what the run ended with ("model 3 version 2")."""
        store = self.service.store
        try:
            evaluation = read_evaluation(folder / "output" / "evaluation.json")
        except InvalidInput as exc:
            self._append(log_key, f"[workbench] evaluation.json ignored: {exc.message}")
            evaluation = None
        evaluation_doc = evaluation.model_dump(mode="json") if evaluation is not None else {}
        model_id = self._model_for(run)
        key = _model_key(model_id, run.job_id)
        if _has_files(model_dir):
            for skipped in _drop_links(model_dir):
                self._append(log_key, f"[workbench] not kept (not a regular file): {skipped}")
            if store.exists(key):
                store.delete(key)
            store.publish_dir(model_dir, key)
        manifest, files, size = _manifest(store.path(key))
        for attempt in range(5):
            try:
                with self.service.registry.session() as s:
                    number = self._add_version(
                        s, run, model_id, key, manifest, files, size, evaluation_doc
                    )
                return f"model {model_id} version {number}"
            except sa.exc.IntegrityError:  # another run took the version number
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _add_version(
        self,
        s: Session,
        run: _Run,
        model_id: int,
        key: str,
        manifest: str,
        files: int,
        size: int,
        evaluation: dict[str, Any],
    ) -> int:
        task = s.get_one(TrainingTask, run.task_id)
        job = s.get_one(Job, run.job_id)
        done = s.scalar(sa.select(ModelVersion).where(ModelVersion.job_id == job.id))
        if done is not None:  # registered by a collection a restart cut short
            return int(done.version)
        algorithm = s.get(Algorithm, task.algorithm_id)
        record = self.service.store.path(f"{run_key(run.task_id, run.job_id)}/{RUN_RECORD}")
        parameters = json.loads(record.read_text(encoding="utf-8"))["parameters"]
        number = s.scalar(
            sa.select(sa.func.coalesce(sa.func.max(ModelVersion.version), 0)).where(
                ModelVersion.model_id == model_id
            )
        )
        version = ModelVersion(
            model_id=model_id,
            version=number + 1,
            task_id=task.id,
            job_id=job.id,
            algorithm_id=task.algorithm_id,
            dataset_id=task.dataset_id,
            environment_id=algorithm.environment_id if algorithm else None,
            parameters=parameters,
            evaluation=evaluation,
            storage_key=key,
            sha256=hashlib.sha256(manifest.encode()).hexdigest(),
            base_version_id=task.base_model_version_id,
            files=files,
            size=size,
        )
        s.add(version)
        s.flush()
        task.evaluation = evaluation
        return version.version

    def _model_for(self, run: _Run) -> int:
        """The task's model: made by its first success, named after it, with its owner and
        visibility; for transfer training, the base version's model when the task's owner
        owns it."""
        with self.service.registry.session() as s:
            task = s.get_one(TrainingTask, run.task_id)
            if task.model_id is not None:
                return task.model_id
            model_id = None
            if task.base_model_version_id is not None:
                base = s.get_one(ModelVersion, task.base_model_version_id)
                model = s.get_one(Model, base.model_id)
                model_id = model.id if model.owner_id == task.owner_id else None
            if model_id is None:
                model = Model(
                    name=task.name,
                    owner_id=task.owner_id,
                    visibility=task.visibility,
                    description=f"trained by task {task.id}",
                )
                s.add(model)
                s.flush()
                model_id = model.id
            task.model_id = model_id
            return model_id

    # --- metrics --------------------------------------------------------------------------

    def _read_all_metrics(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                self._read_metrics(run, final=False)
            except Exception:
                log.exception("training run %s: metrics not read", run.job_id)

    def _read_metrics(self, run: _Run, *, final: bool) -> None:
        """Store the metrics file's new lines (``seq`` = the line's position); lines that
        are not JSON objects are skipped. Only whole lines, unless the run has ended."""
        path = self.service.store.path(f"{run_key(run.task_id, run.job_id)}/output/metrics.jsonl")
        with run.lock:
            rows: dict[int, dict[str, Any]] = {}
            try:
                with path.open("rb") as f:
                    f.seek(run.metrics_offset)
                    while chunk := f.read(_METRICS_CHUNK):
                        at_end = len(chunk) < _METRICS_CHUNK
                        end = len(chunk) if final and at_end else chunk.rfind(b"\n") + 1
                        if end == 0:
                            if at_end:
                                break  # half a line: the rest comes later
                            end = len(chunk)  # a line longer than a chunk: skipped
                        lines = chunk[:end].split(b"\n")
                        if chunk[:end].endswith(b"\n"):
                            lines.pop()
                        for raw in lines:
                            seq = run.metrics_lines
                            run.metrics_lines += 1
                            values = _json_object(raw)
                            if values is not None and seq > run.stored_seq:
                                rows[seq] = values
                        run.metrics_offset += end
                        f.seek(run.metrics_offset)
            except FileNotFoundError:
                return
            if not rows or self._detached:
                return
            with self.service.registry.session() as s:
                there = set(
                    s.scalars(
                        sa.select(TrainingMetric.seq).where(
                            TrainingMetric.job_id == run.job_id, TrainingMetric.seq.in_(rows)
                        )
                    ).all()
                )
                s.add_all(
                    TrainingMetric(task_id=run.task_id, job_id=run.job_id, seq=seq, values=values)
                    for seq, values in rows.items()
                    if seq not in there
                )
            run.stored_seq = max(rows)

    # --- helpers --------------------------------------------------------------------------

    def _job_state(self, run: _Run) -> str:
        with self.service.registry.session() as s:
            return s.scalar(sa.select(Job.state).where(Job.id == run.job_id)) or ""

    def _end(self, run: _Run, state: str, reason: str, *, claimed: bool = True) -> None:
        """End the job (and the task, when it is the task's current run) in ``state``.
        ``claimed=False``: only a job still queued."""
        with self.service.registry.session() as s:
            job = s.get(Job, run.job_id)
            if job is None or (not claimed and job.state != JobState.QUEUED):
                return
            self._mark_end(s, run, state, reason)

    def _mark_end(self, s: Session, run: _Run, state: str, reason: str) -> None:
        """In the transaction ``s``: the end state of a job not finished yet, and of its
        task when it is the task's current run; the last line of the log says it before
        the transaction commits, so a reader that sees the end state has the whole log."""
        job = s.get(Job, run.job_id)
        if job is None or job.state in JobState.FINISHED:
            return
        job.state, job.message = state, reason
        job.finished_at = job.finished_at or utcnow()
        task = s.get(TrainingTask, run.task_id)
        if task is not None and task.job_id == job.id:
            task.state = TaskState(state)
            task.state_reason = "" if state == JobState.SUCCEEDED else reason
        if job.log_key:
            self._append(job.log_key, f"[workbench] run {run.job_id} {state}: {reason}")

    def _append(self, key: str, line: str) -> None:
        path = self.service.store.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    @staticmethod
    def _cleanup(folder: Path) -> None:
        """Remove what a finished run no longer needs: the dataset view and the model
        folder (published, or of a failed run); the log and output files stay."""
        shutil.rmtree(folder / "dataset", ignore_errors=True)
        shutil.rmtree(folder / "output" / "model", ignore_errors=True)


def _run_of(job: Job, task: TrainingTask) -> _Run:
    return _Run(
        job_id=job.id, task_id=task.id, cpus=task.cpus, memory_mb=task.memory_mb, gpus=task.gpus
    )


def _fits(run: _Run, active: list[_Run], limits: TrainingLimits) -> bool:
    return (
        run.cpus + sum(r.cpus for r in active) <= limits.cpus + 1e-9
        and run.memory_mb + sum(r.memory_mb for r in active) <= limits.memory_mb
        and run.gpus + sum(r.gpus for r in active) <= limits.gpus
    )


def _model_key(model_id: int, job_id: int) -> str:
    return f"models/{model_id}/job-{job_id}"


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return json_safe(value) if isinstance(value, dict) else None


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _drop_links(folder: Path) -> list[str]:
    """Remove what is not a regular file or a folder (links could reach out of the model)."""
    dropped = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            dropped.append(path.relative_to(folder).as_posix())
            path.unlink()
    return dropped


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _manifest(folder: Path) -> tuple[str, int, int]:
    """The sorted ``<sha256>  <path>`` lines of a folder's files, their number and size."""
    lines = []
    size = 0
    for path in _files(folder):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        size += path.stat().st_size
        lines.append(f"{digest.hexdigest()}  {path.relative_to(folder).as_posix()}\n")
    return "".join(sorted(lines, key=lambda line: line[66:])), len(lines), size


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return list(deque((line.rstrip("\n") for line in f), maxlen=lines))
    except FileNotFoundError:
        return []


def _give_to_run_user(root: Path) -> None:
    """Let the run's uid 1000 write its output: the owner when the server runs as root,
    else (a server of another uid) a folder everyone may write."""
    for path in (root, *root.rglob("*")):
        if os.geteuid() == 0:
            os.lchown(path, RUN_UID, RUN_UID)
        elif os.geteuid() != RUN_UID:
            path.chmod(0o777)
