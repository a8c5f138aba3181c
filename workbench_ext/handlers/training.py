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
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.resource import Resource, Schemas

#: the path parameter of one training task's routes
TASK = {"task_id": int}


class TrainingHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:training"


TASKS = Resource("Task", TrainingHandlerBase, "training", TASK, read=scopes.READ_TRAINING)
TasksHandler, TaskHandler = TASKS.standard(
    Schemas(TaskInfo, TaskCreate, TaskUpdate, TaskFilter),
    {
        "list": "Training tasks I can see: mine and everyone's public ones",
        "create": 'Create a training task (a draft, or queued at once with "start": true)',
        "get": "One training task",
        "update": "Edit a training task (owner; a draft or a finished task)",
        "delete": "Delete a task that is not queued or running, its runs, logs and metrics "
        "(owner); its model versions stay",
    },
)
#: POST: queue a draft's first run (the runner starts it when there is room)
TaskStartHandler = TASKS.action("start", "Queue a draft's first run (owner)", TaskInfo)
#: POST: a queued task stops at once, a running one once its container has exited
#: (SIGTERM, SIGKILL after 10 s)
TaskStopHandler = TASKS.action(
    "stop",
    "Stop a queued task at once, a running one once its container has exited (owner)",
    TaskInfo,
)
#: POST: queue a new run of a finished task
TaskRetryHandler = TASKS.action("retry", "Queue a new run of a finished task (owner)", TaskInfo)


class MetricsHandler(TrainingHandlerBase):
    """A run's metrics grow while it runs: no answer is cached."""

    token_scopes = scopes.needs(GET=TASKS.read)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    get = TASKS.call(
        "metrics",
        "The run's metric lines after line `after` (at most 5000); `job_id`: an earlier run",
        response=list[MetricPoint],
        path=TASK,
        query=MetricsQuery,
        spread=True,
    )


TaskRunsHandler = TASKS.view("runs", "Every run of the task (its jobs)", list[TrainingRunInfo])


handlers = [
    (rf"{API}/training/tasks", TasksHandler),
    (rf"{API}/training/tasks/(\d+)", TaskHandler),
    (rf"{API}/training/tasks/(\d+)/start", TaskStartHandler),
    (rf"{API}/training/tasks/(\d+)/stop", TaskStopHandler),
    (rf"{API}/training/tasks/(\d+)/retry", TaskRetryHandler),
    (rf"{API}/training/tasks/(\d+)/metrics", MetricsHandler),
    (rf"{API}/training/tasks/(\d+)/runs", TaskRunsHandler),
]
