"""A training run as a job (kind ``training``): the task's run in a container of its
algorithm's training image, on the job runner (:mod:`workbench.jobs`).

1. **prepare**: the dataset view (:mod:`dataset_view`) under
   ``training/<task>/<job>/dataset``, the output folder ``.../output`` (``model/`` inside,
   owned by uid 1000 when the server runs as root), the parameters resolved against the
   algorithm's declarations, the run spec (docs/contracts.md);
2. the runner runs it and copies its output into ``training/<task>/<job>/log.txt``;
   meanwhile **poll** stores the new lines of ``metrics.jsonl`` in the registry and sets
   the job's progress from ``epoch`` / ``EPOCHS``;
3. **collect**: an out-of-memory kill -> failed naming the memory limit; a non-zero exit ->
   failed with the code and the last 20 lines; an exit 0 with an empty ``$MODEL_DIR`` ->
   failed; else the model files become a new version of the task's model
   (:class:`VersionService`) with its evaluation and lineage -> succeeded.

The task's state follows its current run's (``sync``): queued, running (the job is
starting, running or stopping), then the end state with its reason. The log, ``run.json``
(image, command, parameters), ``metrics.jsonl`` and ``evaluation.json`` are kept; the
dataset view and the model folder are removed once the run is over.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import can_see
from workbench.algorithms.params import ImageSettings, ParamSpec, resolve_parameters
from workbench.backends.base import Limits, Mount, RunInfo, RunSpec
from workbench.enums import ImageKind, TaskState
from workbench.errors import InvalidInput, JobFailed, UnsafeOutput, WorkbenchError
from workbench.jobs.files import RUN_UID, RunOutput, give_to_run_user, path_in_run, tail_lines
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.states import JobState
from workbench.models.evaluation import MAX_BYTES as EVALUATION_BYTES
from workbench.models.evaluation import json_safe, read_evaluation
from workbench.models.schemas import NewVersion
from workbench.models.versions import VersionService, has_files, staging_key
from workbench.networks import SCRATCH, jobs_network
from workbench.registry.db import Registry
from workbench.registry.models import (
    Algorithm,
    AlgorithmImage,
    Dataset,
    Environment,
    Job,
    ModelVersion,
    TrainingMetric,
    TrainingTask,
)
from workbench.store import ArtifactStore
from workbench.training.dataset_view import DatasetSource, materialize
from workbench.users import Actor

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
TAIL_LINES = 20
#: what a run was started with (image, command, parameters), beside its log
RUN_RECORD = "run.json"
_METRICS_CHUNK = 4 * 1024**2
#: what one look at a metrics file reads at most (the next look goes on from there)
_METRICS_PER_LOOK = 4 * _METRICS_CHUNK
#: the most metric lines a run keeps (a run could write millions, each a row)
MAX_METRIC_LINES = 100_000
#: a job's state as its task shows it
_TASK_STATE = {
    JobState.QUEUED: TaskState.QUEUED,
    JobState.STARTING: TaskState.RUNNING,
    JobState.RUNNING: TaskState.RUNNING,
    JobState.STOPPING: TaskState.RUNNING,
    JobState.SUCCEEDED: TaskState.SUCCEEDED,
    JobState.FAILED: TaskState.FAILED,
    JobState.STOPPED: TaskState.STOPPED,
}


def run_key(task_id: int, job_id: int | str) -> str:
    """The store folder of one run: ``log.txt``, ``dataset/``, ``output/``."""
    return f"training/{task_id}/{job_id}"


@dataclass
class _Metrics:
    """How far a run's metrics file was read: bytes, lines, the last line stored."""

    offset: int = 0
    lines: int = 0
    stored_seq: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class TrainingKind(JobKind):
    """Training runs on the job runner (module doc).

    :param outbound: runs reach beyond this host (``WORKBENCH_TRAINING_OUTBOUND``).
    """

    name = JOB_KIND
    requeue_interrupted = True  # a run is prepared again from scratch

    registry: Registry
    store: ArtifactStore
    versions: VersionService
    _: KW_ONLY
    concurrency: int = field()  # required: not JobKind's class default
    outbound: bool = False
    _metrics: dict[int, _Metrics] = field(init=False, default_factory=dict)
    _metrics_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    # --- the contract ---------------------------------------------------------------------

    def readable(self, s: Session, actor: Actor, job: Job) -> bool:
        task = s.get(TrainingTask, job.target_id) if job.target_id is not None else None
        return task is not None and can_see(task, actor)

    def sync(self, s: Session, job: Job) -> None:
        task = s.get(TrainingTask, job.target_id) if job.target_id is not None else None
        if task is None or task.job_id != job.id:
            return  # an older run of the task
        task.state = _TASK_STATE[JobState(job.state)]
        if job.state in (JobState.QUEUED, JobState.SUCCEEDED):
            task.state_reason = ""
        elif job.state in (JobState.FAILED, JobState.STOPPED):
            task.state_reason = job.message

    def prepare(self, ctx: JobContext) -> RunSpec:
        task_id = _task_id(ctx)
        folder = self.store.path(run_key(task_id, ctx.job_id))
        try:
            return self._prepare(ctx, task_id, folder)
        except (WorkbenchError, OSError, ValueError) as exc:
            reason = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            raise JobFailed(f"could not prepare the run: {reason}") from exc

    def poll(self, ctx: JobContext) -> None:
        self._read_metrics(ctx, final=False)

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        self._read_metrics(ctx, final=True)
        task_id = _task_id(ctx)
        folder = self.store.path(run_key(task_id, ctx.job_id))
        with self.registry.session() as s:
            memory_mb = s.get_one(Job, ctx.job_id).memory_mb
        model_dir = folder / "model"
        code = info.exit_code
        if info.oom_killed:
            raise JobFailed(
                f"killed: out of memory (the task's limit is {memory_mb} MiB). Give the "
                "task more memory_mb, or make the run use less (a smaller BATCH_SIZE or "
                "IMG_SIZE, fewer samples in memory)."
            )
        if code != 0:
            hint = f" (137: killed, often for going over the {memory_mb} MiB memory limit)"
            raise JobFailed(
                f"exited with code {code}{hint if code == 137 else ''}; the last log lines:\n"
                + "\n".join(tail_lines(ctx.log_path, TAIL_LINES))
            )
        if not self._staged(ctx, task_id):
            model_dir = self._collect_model(folder)
        try:
            return self._register(ctx, task_id, model_dir, folder)
        except (WorkbenchError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.exception("training run %s: the model was not registered", ctx.job_id)
            why = exc.message if isinstance(exc, WorkbenchError) else type(exc).__name__
            raise JobFailed(f"the model could not be registered ({why}); retry the task") from exc

    @staticmethod
    def _collect_model(folder: Path) -> Path:
        """A copy of the run's ``$MODEL_DIR`` that is the server's (the run's own folder is
        hostile input: :class:`RunOutput` takes regular files and folders only, and fails
        the run on a link or anything else), at ``<run>/model``."""
        output = RunOutput(folder / "output", "the training run")
        collected = folder / "model"
        shutil.rmtree(collected, ignore_errors=True)  # a copy cut short by a restart
        if output.exists("model"):
            output.copy("model", collected)
        if not has_files(collected):
            raise JobFailed(
                f"exited with code 0 but wrote no model into $MODEL_DIR ({MODEL_DIR}); the "
                "training code must save its model files there."
            )
        return collected

    def _staged(self, ctx: JobContext, task_id: int) -> bool:
        """Whether an earlier collection (cut short by a restart) staged the model files."""
        with self.registry.session() as s:
            model_id = s.scalar(sa.select(TrainingTask.model_id).where(TrainingTask.id == task_id))
        return model_id is not None and self.store.exists(staging_key(model_id, _staging_name(ctx)))

    def vanished(self, ctx: JobContext) -> Outcome:
        with self.registry.session() as s:
            version = s.scalar(sa.select(ModelVersion).where(ModelVersion.job_id == ctx.job_id))
            if version is not None:
                return Outcome(f"model {version.model_id} version {version.version}")
        raise JobFailed(
            "the container is gone (removed while no server followed it?); retry the task"
        )

    def cleanup(self, ctx: JobContext) -> None:
        """The dataset view and the model folder go; the log and output files stay."""
        folder = self.store.path(run_key(_task_id(ctx), ctx.job_id))
        shutil.rmtree(folder / "dataset", ignore_errors=True)
        shutil.rmtree(folder / "output" / "model", ignore_errors=True)
        shutil.rmtree(folder / "model", ignore_errors=True)
        with self._metrics_lock:
            self._metrics.pop(ctx.job_id, None)

    # --- preparing ------------------------------------------------------------------------

    def _prepare(self, ctx: JobContext, task_id: int, folder: Path) -> RunSpec:
        with self.registry.session() as s:
            task = s.get_one(TrainingTask, task_id)
            algorithm = s.get_one(Algorithm, task.algorithm_id)
            image = s.scalar(
                sa.select(AlgorithmImage).where(
                    AlgorithmImage.algorithm_id == algorithm.id,
                    AlgorithmImage.kind == ImageKind.TRAIN,
                )
            )
            if image is None or not image.image_ref:
                raise JobFailed(f"algorithm {algorithm.id} ({algorithm.name}) has no train image")
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
                train=self.store.path(splits["train"]),
                test=self.store.path(splits["test"]) if "test" in splits else None,
            )
            base_id = task.base_model_version_id
            train_ratio, parameters = task.train_ratio, dict(task.parameters)
            image_ref, limits = image.image_ref, Limits(task.cpus, task.memory_mb, gpus=task.gpus)
        env = resolve_parameters(settings.env, parameters)
        shutil.rmtree(folder, ignore_errors=True)  # a run claimed again after a restart
        view = materialize(source, folder / "dataset", train_ratio=train_ratio, seed=str(task_id))
        output = folder / "output"
        (output / "model").mkdir(parents=True)
        give_to_run_user(output)
        backend = ctx.backend
        base_path = self.versions.files(base_id) if base_id is not None else None
        mounts = [
            Mount(folder / "dataset", path_in_run(backend, folder / "dataset", DATASET_DIR), True),
            Mount(output, path_in_run(backend, output, OUTPUT_DIR)),
        ]
        if base_path is not None:
            mounts.append(Mount(base_path, path_in_run(backend, base_path, BASE_MODEL_DIR), True))
        contract = {
            "DATASET_DIR": path_in_run(backend, folder / "dataset", DATASET_DIR),
            "DATASET_FORMAT": view["format"],
            "OUTPUT_DIR": path_in_run(backend, output, OUTPUT_DIR),
            "MODEL_DIR": path_in_run(backend, output / "model", MODEL_DIR),
            "METRICS_FILE": path_in_run(backend, output / "metrics.jsonl", METRICS_FILE),
            "EVALUATION_FILE": path_in_run(backend, output / "evaluation.json", EVALUATION_FILE),
            "BASE_MODEL_DIR": path_in_run(backend, base_path, BASE_MODEL_DIR) if base_path else "",
        }
        command = (*settings.command, *settings.args)
        record = {"image": image_ref, "command": list(command) or None, "parameters": env}
        (folder / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return RunSpec(
            name=f"workbench-train-{task_id}-{ctx.job_id}-{secrets.token_hex(3)}",
            image=image_ref,
            command=command or None,
            env={
                "DEVICE": "cuda" if limits.gpus > 0 else "cpu",
                "PYTHONUNBUFFERED": "1",  # print() reaches the log as it happens
                **env,
                **contract,
            },
            mounts=tuple(mounts),
            limits=limits,
            labels={"workbench.task": str(task_id)},
            user=f"{RUN_UID}:{RUN_UID}",
            network=jobs_network(self.outbound),
            read_only_root=True,
            tmpfs=SCRATCH,
        )

    # --- collecting -----------------------------------------------------------------------

    def _register(self, ctx: JobContext, task_id: int, model_dir: Path, folder: Path) -> Outcome:
        """The model files as a new version of the task's model, with the run's evaluation
        and lineage; "model 3 version 2"."""
        try:
            output = RunOutput(folder / "output", "the training run")
            evaluation = read_evaluation(
                output.read_bytes("evaluation.json", limit=EVALUATION_BYTES)
            )
        except (InvalidInput, UnsafeOutput) as exc:
            ctx.log(f"[workbench] evaluation.json ignored: {exc.message}")
            evaluation = None
        evaluation_doc = evaluation.model_dump(mode="json") if evaluation is not None else {}
        record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
        with self.registry.session() as s:
            task = s.get_one(TrainingTask, task_id)
            if task.model_id is None:
                task.model_id = self.versions.model_for(
                    s,
                    name=task.name,
                    owner_id=task.owner_id,
                    visibility=task.visibility,
                    description=f"trained by task {task.id}",
                    purpose=task.purpose,
                    base_version_id=task.base_model_version_id,
                ).id
            algorithm = s.get(Algorithm, task.algorithm_id)
            environment = (
                s.get(Environment, algorithm.environment_id)
                if algorithm is not None and algorithm.environment_id is not None
                else None
            )
            model_id = task.model_id
            lineage = NewVersion(
                framework=environment.framework if environment is not None else "",
                task_id=task.id,
                job_id=ctx.job_id,
                algorithm_id=task.algorithm_id,
                dataset_id=task.dataset_id,
                environment_id=algorithm.environment_id if algorithm else None,
                parameters=record["parameters"],
                evaluation=evaluation_doc,
                base_version_id=task.base_model_version_id,
            )
        version = self.versions.register_version(
            model_id, model_dir, lineage, staging=_staging_name(ctx)
        )
        with self.registry.session() as s:
            s.get_one(TrainingTask, task_id).evaluation = evaluation_doc
        return Outcome(
            f"model {model_id} version {version.version}",
            {"model_id": model_id, "model_version_id": version.id},
        )

    # --- metrics --------------------------------------------------------------------------

    def _read_metrics(self, ctx: JobContext, *, final: bool) -> None:
        """Store the metrics file's new lines (``seq`` = the line's position); lines that
        are not JSON objects are skipped. Only whole lines, unless the run has ended."""
        task_id = _task_id(ctx)
        output = RunOutput(self.store.path(f"{run_key(task_id, ctx.job_id)}/output"), "the run")
        with self._metrics_lock:
            cursor = self._metrics.setdefault(ctx.job_id, _Metrics())
        with cursor.lock:
            if cursor.stored_seq is None:
                with self.registry.session() as s:
                    cursor.stored_seq = s.scalar(
                        sa.select(sa.func.coalesce(sa.func.max(TrainingMetric.seq), -1)).where(
                            TrainingMetric.job_id == ctx.job_id
                        )
                    )
            try:
                metrics = output.open("metrics.jsonl")
            except UnsafeOutput as exc:
                if final:
                    ctx.log(f"[workbench] metrics.jsonl not read: {exc.message}")
                return
            if metrics is None:
                return
            with metrics:
                rows = _new_lines(metrics, cursor, final=final)
            if not rows:
                return
            with self.registry.session() as s:
                there = set(
                    s.scalars(
                        sa.select(TrainingMetric.seq).where(
                            TrainingMetric.job_id == ctx.job_id, TrainingMetric.seq.in_(rows)
                        )
                    ).all()
                )
                s.add_all(
                    TrainingMetric(task_id=task_id, job_id=ctx.job_id, seq=seq, values=values)
                    for seq, values in rows.items()
                    if seq not in there
                )
            cursor.stored_seq = max(rows)
            epochs = _number(ctx.spec.get("epochs"))
            epoch = _number(rows[max(rows)].get("epoch"))
            if epochs and epoch is not None:
                ctx.progress(epoch / epochs)


def _new_lines(f: BinaryIO, cursor: _Metrics, *, final: bool) -> dict[int, dict[str, Any]]:
    """The metrics lines written since the last look: at most :data:`_METRICS_PER_LOOK`
    bytes a look, and none past :data:`MAX_METRIC_LINES` lines (the file is the run's:
    it may be endless, or sparse)."""
    rows: dict[int, dict[str, Any]] = {}
    f.seek(cursor.offset)
    start = cursor.offset
    while cursor.lines < MAX_METRIC_LINES and cursor.offset - start < _METRICS_PER_LOOK:
        chunk = f.read(_METRICS_CHUNK)
        if not chunk:
            break
        at_end = len(chunk) < _METRICS_CHUNK
        end = len(chunk) if final and at_end else chunk.rfind(b"\n") + 1
        if end == 0:
            if at_end:
                break  # half a line: the rest comes later
            end = len(chunk)  # a line longer than a chunk: skipped
        lines = chunk[:end].split(b"\n")
        if chunk[:end].endswith(b"\n"):
            lines.pop()
        for raw in lines[: MAX_METRIC_LINES - cursor.lines]:
            seq = cursor.lines
            cursor.lines += 1
            values = _json_object(raw)
            if values is not None and seq > (cursor.stored_seq or -1):
                rows[seq] = values
        cursor.offset += end
        f.seek(cursor.offset)
    return rows


def _staging_name(ctx: JobContext) -> str:
    return f"job-{ctx.job_id}"


def _task_id(ctx: JobContext) -> int:
    if ctx.target_id is None:
        raise JobFailed("the run names no training task")
    return ctx.target_id


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return json_safe(value) if isinstance(value, dict) else None
