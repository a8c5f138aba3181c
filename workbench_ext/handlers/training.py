"""/training/tasks: training tasks (create, edit, start, stop, retry, delete), their runs
and metrics. A run is a job: its log is the job's (``GET /jobs/<job_id>/log``)."""

from __future__ import annotations

from workbench import scopes
from workbench.training.schemas import (
    MetricPoint,
    MetricsQuery,
    TaskCreate,
    TaskFilter,
    TaskInfo,
    TaskUpdate,
    TrainingRunInfo,
)
from workbench_ext.handlers.base import API, WorkbenchHandler, service_call

#: the path parameter of one training task's routes
TASK = {"task_id": int}


class TrainingHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:training"


class TasksHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    get = service_call(
        "Training tasks I can see: mine and everyone's public ones",
        lambda wb: wb.training.list,
        response=list[TaskInfo],
        query=TaskFilter,
    )
    post = service_call(
        'Create a training task (a draft, or queued at once with "start": true)',
        lambda wb: wb.training.create,
        TaskCreate,
        TaskInfo,
        201,
    )


class TaskHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    get = service_call(
        "One training task", lambda wb: wb.training.get, response=TaskInfo, path=TASK
    )
    patch = service_call(
        "Edit a training task (owner; a draft or a finished task)",
        lambda wb: wb.training.update,
        TaskUpdate,
        TaskInfo,
        path=TASK,
    )
    delete = service_call(
        "Delete a task that is not queued or running, its runs, logs and metrics (owner); "
        "its model versions stay",
        lambda wb: wb.training.delete,
        status=204,
        path=TASK,
    )


class StartHandler(TrainingHandlerBase):
    """POST: queue a draft's first run (the runner starts it when there is room)."""

    post = service_call(
        "Queue a draft's first run (owner)",
        lambda wb: wb.training.start,
        response=TaskInfo,
        path=TASK,
    )


class StopHandler(TrainingHandlerBase):
    """POST: a queued task stops at once, a running one once its container has exited
    (SIGTERM, SIGKILL after 10 s)."""

    post = service_call(
        "Stop a queued task at once, a running one once its container has exited (owner)",
        lambda wb: wb.training.stop,
        response=TaskInfo,
        path=TASK,
    )


class RetryHandler(TrainingHandlerBase):
    """POST: queue a new run of a finished task."""

    post = service_call(
        "Queue a new run of a finished task (owner)",
        lambda wb: wb.training.retry,
        response=TaskInfo,
        path=TASK,
    )


class MetricsHandler(TrainingHandlerBase):
    """A run's metrics grow while it runs: no answer is cached."""

    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    get = service_call(
        "The run's metric lines after line `after` (at most 5000); `job_id`: an earlier run",
        lambda wb: wb.training.metrics,
        response=list[MetricPoint],
        path=TASK,
        query=MetricsQuery,
        spread=True,
    )


class RunsHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    get = service_call(
        "Every run of the task (its jobs)",
        lambda wb: wb.training.runs,
        response=list[TrainingRunInfo],
        path=TASK,
    )


handlers = [
    (rf"{API}/training/tasks", TasksHandler),
    (rf"{API}/training/tasks/(\d+)", TaskHandler),
    (rf"{API}/training/tasks/(\d+)/start", StartHandler),
    (rf"{API}/training/tasks/(\d+)/stop", StopHandler),
    (rf"{API}/training/tasks/(\d+)/retry", RetryHandler),
    (rf"{API}/training/tasks/(\d+)/metrics", MetricsHandler),
    (rf"{API}/training/tasks/(\d+)/runs", RunsHandler),
]
