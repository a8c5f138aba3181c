"""Training tasks (manual 2.3) and the models they make (2.4): the wizard's checks, the
task's state machine, its runs, logs and metrics.

A task names an algorithm and a dataset of its purpose, the share of the dataset to train
on (when the dataset has no independent test set), values for the algorithm's declared
parameters, and resources. Its state::

    draft --start--> queued --(the runner)--> running --> succeeded | failed | stopped
      ^                 |                        |
      |                 +--stop--> stopped       +--stop--> (the run ends) stopped
      +-- edit (draft, or a finished task) --retry--> queued (a new run)

Every start or retry is a new run: a :class:`Job` row (kind ``training``) that
``TrainingTask.job_id`` points at; the task's state and its job's state change in the same
transaction. A job also passes through ``starting`` (claimed by a runner, its container not
started yet) and ``stopping`` (a stop was asked while it ran); the task is ``running`` in
both. The job runner (:mod:`workbench.jobs`, the kind in :mod:`workbench.training.jobs`)
starts the runs, follows their logs and metrics and records their outcome; a successful
run adds a version to the task's model (:mod:`workbench.models`).

Reading follows the visibility rules of every shareable thing (private: 404 to others);
only the owner edits, starts, stops, retries or deletes.
"""

from __future__ import annotations

import contextlib
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from workbench.access import EditableService, check_visibility, get_owned, get_visible
from workbench.algorithms.params import ParamSpec, parse_value, resolve_parameters
from workbench.config import TrainingLimits
from workbench.enums import (
    ACTIVE_TASK_STATES,
    FINISHED_TASK_STATES,
    SUB_PURPOSES,
    ImageKind,
    ImageState,
    PublishState,
    Purpose,
    SplitMode,
    SubPurpose,
    TaskState,
)
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.jobs.service import JobService
from workbench.jobs.states import FINISHED_JOB_STATES, JobState
from workbench.models.versions import visible_version
from workbench.quotas import QuotaService
from workbench.registry.db import Registry
from workbench.registry.models import (
    Algorithm,
    AlgorithmImage,
    Dataset,
    Job,
    ModelVersion,
    TrainingMetric,
    TrainingTask,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore
from workbench.training.jobs import JOB_KIND, TARGET_TYPE, run_key
from workbench.training.schemas import (
    MetricPoint,
    TaskCreate,
    TaskFilter,
    TaskInfo,
    TrainingRunInfo,
)
from workbench.users import Actor, username_of

#: the most metric lines one call returns (ask again with ``after`` = the last seq)
METRICS_PAGE = 5000
EDITABLE = (TaskState.DRAFT, *FINISHED_TASK_STATES)
#: the fields a task's checks look at, as a create body names them
CHECKED = (
    "purpose",
    "sub_purpose",
    "algorithm_id",
    "dataset_id",
    "train_ratio",
    "parameters",
    "cpus",
    "memory_mb",
    "gpus",
    "base_model_version_id",
)


@dataclass(eq=False)
class TrainingService(EditableService[TrainingTask, TaskInfo]):
    """Training tasks and their runs (jobs of kind ``training``, see
    :mod:`workbench.training.jobs`).

    :param limits: what this server's container jobs may use together; one task may ask
        for at most these.
    :param quotas: a run is refused past its owner's memory quota.
    """

    model = TrainingTask
    entity = "training task"
    nullable = ("train_ratio", "base_model_version_id")
    newest_first = True

    registry: Registry
    store: ArtifactStore
    jobs: JobService
    _: KW_ONLY
    limits: TrainingLimits
    quotas: QuotaService | None = None

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: TaskFilter | None = None) -> list[TaskInfo]:
        return self._list(actor, filters or TaskFilter())

    def runs(self, actor: Actor, task_id: int) -> list[TrainingRunInfo]:
        """Every run of the task, the first first."""
        with self.registry.session() as s:
            get_visible(s, TrainingTask, task_id, actor, "training task")
            jobs = s.scalars(_jobs_of(task_id).order_by(Job.id)).all()
            made = dict(
                s.execute(
                    sa.select(ModelVersion.job_id, ModelVersion.id).where(
                        ModelVersion.job_id.in_([job.id for job in jobs])
                    )
                ).all()
            )
            return [
                from_row(TrainingRunInfo, job, task_id=task_id, model_version_id=made.get(job.id))
                for job in jobs
            ]

    def metrics(
        self, actor: Actor, task_id: int, after: int = -1, job_id: int | None = None
    ) -> list[MetricPoint]:
        """The run's metric lines after line ``after`` (at most :data:`METRICS_PAGE`)."""
        with self.registry.session() as s:
            task = get_visible(s, TrainingTask, task_id, actor, "training task")
            job = self._job_of(s, task, job_id)
            if job is None:
                return []
            rows = s.scalars(
                sa.select(TrainingMetric)
                .where(TrainingMetric.job_id == job.id, TrainingMetric.seq > after)
                .order_by(TrainingMetric.seq)
                .limit(METRICS_PAGE)
            ).all()
            return [MetricPoint(seq=r.seq, values=r.values, created_at=r.created_at) for r in rows]

    # --- changing -------------------------------------------------------------------------

    def create(self, actor: Actor, spec: TaskCreate) -> TaskInfo:
        """Save a draft, or (``spec.start``) queue its first run at once; either way every
        check runs first, so a refused task leaves nothing behind."""
        check_visibility(actor, spec.visibility)
        fields = spec.model_dump(exclude={"start"})
        with self.registry.session() as s:
            checked = self._check(s, actor, fields)
            named = spec.model_dump(include={"name", "description", "visibility"})
            row = TrainingTask(owner_id=actor.id, state=TaskState.DRAFT, **named, **checked)
            s.add(row)
            s.flush()
            if spec.start:
                self._enqueue(s, row)
            return self._info(s, row)

    def _change(
        self,
        s: Session,
        actor: Actor,
        row: TrainingTask,
        changes: BaseModel,
        fields: dict[str, Any],
    ) -> None:
        """Only a task that is not queued or running; the algorithm, dataset, parameters
        and resources checked together as at its creation; then the fields."""
        if row.state not in EDITABLE:
            raise Conflict(
                f"Training task {row.id} is {row.state}; stop it (or wait until it "
                "ends) before editing it.",
                state=row.state,
            )
        merged = {key: getattr(row, key) for key in CHECKED}
        if fields.get("dataset_id", row.dataset_id) != row.dataset_id and (
            "train_ratio" not in fields
        ):
            merged["train_ratio"] = None  # the new dataset's own ratio
        merged.update({k: v for k, v in fields.items() if k in CHECKED})
        checked = self._check(s, actor, merged)
        super()._change(s, actor, row, changes, {**fields, **checked})

    def delete(self, actor: Actor, task_id: int) -> None:
        """Delete a task that is not queued or running, its runs, logs and metrics. The
        model versions it made stay, with their lineage (their ``task_id`` becomes null);
        so do the runs that made them."""
        with self.registry.session() as s:
            row = get_owned(s, TrainingTask, task_id, actor, "training task")
            if row.state in ACTIVE_TASK_STATES:
                raise Conflict(
                    f"Training task {task_id} is {row.state}; stop it first "
                    f"(`workbench task stop {task_id}`), then delete it.",
                    state=row.state,
                )
            s.execute(
                sa.update(ModelVersion)
                .where(ModelVersion.task_id == task_id)
                .values(task_id=None)
                .execution_options(synchronize_session=False)
            )
            row.job_id = None
            s.flush()
            kept = sa.select(ModelVersion.job_id).where(ModelVersion.job_id.is_not(None))
            s.execute(sa.delete(TrainingMetric).where(TrainingMetric.task_id == task_id))
            s.execute(
                sa.delete(Job)
                .where(
                    Job.target_type == TARGET_TYPE,
                    Job.target_id == task_id,
                    Job.id.not_in(kept),
                )
                .execution_options(synchronize_session=False)
            )
            s.delete(row)
        self.store.delete(f"training/{task_id}")

    def start(self, actor: Actor, task_id: int) -> TaskInfo:
        """Queue a draft's first run."""
        return self._start(actor, task_id, (TaskState.DRAFT,), "retry")

    def retry(self, actor: Actor, task_id: int) -> TaskInfo:
        """Queue a new run of a finished task (succeeded, failed or stopped)."""
        return self._start(actor, task_id, FINISHED_TASK_STATES, "start")

    def stop(self, actor: Actor, task_id: int) -> TaskInfo:
        """A queued task stops at once; a running one gets SIGTERM (SIGKILL after 10 s)
        and ends ``stopped`` once its container has exited."""
        with self.registry.session() as s:
            row = get_owned(s, TrainingTask, task_id, actor, "training task")
            if row.state not in ACTIVE_TASK_STATES or row.job_id is None:
                raise Conflict(
                    f"Training task {task_id} is {row.state}; only a queued or running "
                    "task can be stopped.",
                    state=row.state,
                )
            job_id = row.job_id
        with contextlib.suppress(Conflict):  # it ended meanwhile
            self.jobs.stop(job_id, f"stopped by {actor.username} before it started")
        return self.get(actor, task_id)

    # --- helpers --------------------------------------------------------------------------

    def _start(
        self, actor: Actor, task_id: int, allowed: tuple[TaskState, ...], other: str
    ) -> TaskInfo:
        with self.registry.session() as s:
            row = get_owned(s, TrainingTask, task_id, actor, "training task")
            if row.state not in allowed:
                hint = (
                    "it is queued or running already"
                    if row.state in ACTIVE_TASK_STATES
                    else f"use `{other}` (`workbench task {other} {task_id}`)"
                )
                raise Conflict(
                    f"Training task {task_id} is {row.state}; {hint}.",
                    state=row.state,
                )
            self._check(s, actor, {key: getattr(row, key) for key in CHECKED})
            self._enqueue(s, row)
            return self._info(s, row)

    def _enqueue(self, s: Session, row: TrainingTask) -> None:
        """Check what a run needs now, and queue a new run (a job)."""
        self._check_runnable(s, row)
        if self.quotas is not None:
            self.quotas.check_memory(s, row.owner_id, row.memory_mb, f"training task {row.name}")
        specs = self._param_specs(s, row.algorithm_id)
        epochs = resolve_parameters(specs, row.parameters).get("EPOCHS", "")
        job = self.jobs.create(
            s,
            JOB_KIND,
            owner_id=row.owner_id,
            target_type=TARGET_TYPE,
            target_id=row.id,
            spec={"epochs": int(epochs)} if epochs.isdigit() else {},
            cpus=row.cpus,
            memory_mb=row.memory_mb,
            gpus=row.gpus,
            log_key=f"{run_key(row.id, '{id}')}/log.txt",
        )
        row.job_id = job.id
        row.state = TaskState.QUEUED
        row.state_reason = ""
        row.evaluation = {}

    def _check(self, s: Session, actor: Actor, f: dict[str, Any]) -> dict[str, Any]:
        """The wizard's rules on a whole task (new, or with its changes); the values to
        store (the train ratio, the typed parameters)."""
        purpose, sub_purpose = f["purpose"], f["sub_purpose"]
        if sub_purpose not in SUB_PURPOSES[purpose]:
            raise InvalidInput(
                f"{sub_purpose} is not a sub-purpose of {purpose}; choose one of "
                f"{', '.join(SUB_PURPOSES[purpose])}.",
                field="sub_purpose",
            )
        algorithm = get_visible(s, Algorithm, f["algorithm_id"], actor, "algorithm")
        _check_purpose(algorithm, purpose, sub_purpose)
        dataset = get_visible(s, Dataset, f["dataset_id"], actor, "dataset")
        _check_purpose(dataset, purpose, sub_purpose)
        _check_online(dataset)
        ratio = f["train_ratio"]
        if dataset.split_mode is SplitMode.INDEPENDENT:
            if ratio is not None:
                raise InvalidInput(
                    f"Dataset {dataset.id} ({dataset.name}) has an independent test set, so "
                    "the whole train archive is trained on; leave train_ratio out.",
                    field="train_ratio",
                )
        elif ratio is None:
            ratio = dataset.train_ratio
        specs = self._param_specs(s, algorithm.id)
        values = f["parameters"] or {}
        resolve_parameters(specs, values)  # InvalidInput naming the parameter
        parameters = {
            name: parse_value(specs[name].type, value)
            for name, value in values.items()
            if value is not None and value != ""
        }
        self._check_resources(f["cpus"], f["memory_mb"], f["gpus"])
        if f["base_model_version_id"] is not None:
            visible_version(s, actor, f["base_model_version_id"])
        return {**{k: f[k] for k in CHECKED}, "train_ratio": ratio, "parameters": parameters}

    def _check_runnable(self, s: Session, row: TrainingTask) -> None:
        """What a run needs beyond a valid task: an online algorithm with a ready training
        image, an online dataset."""
        algorithm = s.get_one(Algorithm, row.algorithm_id)
        if algorithm.state != PublishState.ONLINE:
            raise Conflict(
                f"Algorithm {algorithm.id} ({algorithm.name}) is {algorithm.state}; only an "
                "online algorithm trains. Its owner publishes it "
                f"(`workbench algorithm publish {algorithm.id}`), or choose another one.",
                algorithm=algorithm.id,
                state=algorithm.state,
            )
        image = _train_image(s, algorithm.id)
        if image is None or image.state != ImageState.READY or not image.image_ref:
            state = image.state if image is not None else ImageState.MISSING
            raise Conflict(
                f"Algorithm {algorithm.id} ({algorithm.name}) has no ready training image "
                f"(it is {state}); its owner uploads, pulls or publishes one first.",
                algorithm=algorithm.id,
                image_state=state,
            )
        _check_online(s.get_one(Dataset, row.dataset_id))

    def _check_resources(self, cpus: float, memory_mb: int, gpus: int) -> None:
        over = [
            f"{name} {asked} > {allowed}"
            for name, asked, allowed in (
                ("cpus", cpus, self.limits.cpus),
                ("memory_mb", memory_mb, self.limits.memory_mb),
                ("gpus", gpus, self.limits.gpus),
            )
            if asked > allowed
        ]
        if over:
            raise InvalidInput(
                f"Resources above what this server's training runs may use: {', '.join(over)}; "
                "ask for less (an admin sets WORKBENCH_TRAINING_CPUS, _MEMORY_MB and _GPUS).",
                field="resources",
                over=over,
            )

    @staticmethod
    def _param_specs(s: Session, algorithm_id: int) -> dict[str, ParamSpec]:
        image = _train_image(s, algorithm_id)
        env = image.env if image is not None else {}
        return {name: ParamSpec.model_validate(spec) for name, spec in env.items()}

    @staticmethod
    def _job_of(s: Session, task: TrainingTask, job_id: int | None) -> Job | None:
        if job_id is None:
            return s.get(Job, task.job_id) if task.job_id else None
        job = s.get(Job, job_id)
        if job is None or job.target_type != TARGET_TYPE or job.target_id != task.id:
            raise NotFound(
                f"Training task {task.id} has no run {job_id}; list its runs to find one.",
                kind="run",
                id=str(job_id),
            )
        return job

    def _info(self, s: Session, row: TrainingTask) -> TaskInfo:
        algorithm = s.get(Algorithm, row.algorithm_id)
        dataset = s.get(Dataset, row.dataset_id)
        job = s.get(Job, row.job_id) if row.job_id else None
        latest = s.scalar(
            sa.select(sa.func.max(ModelVersion.id)).where(ModelVersion.task_id == row.id)
        )
        reason = row.state_reason
        if job is not None and job.state == JobState.STOPPING and not reason:
            reason = "stopping: SIGTERM sent, SIGKILL after 10 s"
        started: datetime | None = job.started_at if job else None
        finished: datetime | None = (
            job.finished_at if job and job.state in FINISHED_JOB_STATES else None
        )
        return from_row(
            TaskInfo,
            row,
            owner=username_of(s, row.owner_id),
            algorithm_name=algorithm.name if algorithm else "?",
            dataset_name=dataset.name if dataset else "?",
            state_reason=reason,
            evaluation=row.evaluation or None,
            model_version_id=latest,
            started_at=started,
            finished_at=finished,
        )


def _jobs_of(task_id: int) -> sa.Select[tuple[Job]]:
    return sa.select(Job).where(Job.target_type == TARGET_TYPE, Job.target_id == task_id)


def _train_image(s: Session, algorithm_id: int) -> AlgorithmImage | None:
    return s.scalar(
        sa.select(AlgorithmImage).where(
            AlgorithmImage.algorithm_id == algorithm_id, AlgorithmImage.kind == ImageKind.TRAIN
        )
    )


def _check_purpose(row: Algorithm | Dataset, purpose: Purpose, sub_purpose: SubPurpose) -> None:
    """Refuse the task's algorithm or dataset unless it has the task's purpose and
    sub-purpose."""
    if (row.purpose, row.sub_purpose) != (purpose, sub_purpose):
        kind, a_kind = (
            ("algorithm", "an algorithm")
            if isinstance(row, Algorithm)
            else ("dataset", "a dataset")
        )
        raise InvalidInput(
            f"{kind.capitalize()} {row.id} ({row.name}) is for "
            f"{row.purpose}/{row.sub_purpose}, not {purpose}/{sub_purpose}; "
            f"choose {a_kind} of the task's purpose.",
            field=f"{kind}_id",
        )


def _check_online(dataset: Dataset) -> None:
    if dataset.state is not PublishState.ONLINE:
        raise Conflict(
            f"Dataset {dataset.id} ({dataset.name}) is {dataset.state}; only an online "
            "dataset is trained on. Its owner publishes it, or choose another one.",
            dataset=dataset.id,
            state=dataset.state,
        )
