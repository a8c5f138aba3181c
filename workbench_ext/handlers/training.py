"""/training/tasks: training tasks (create, edit, start, stop, retry, delete), their runs
and metrics. A run is a job: its log is the job's (``GET /jobs/<job_id>/log``)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

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
from workbench.training.service import TrainingService
from workbench_ext.handlers.base import API, WorkbenchHandler, operation


class TrainingHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:training"

    @property
    def training(self) -> TrainingService:
        return self.workbench.training


class TasksHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    @operation(
        "Training tasks I can see: mine and everyone's public ones",
        response=list[TaskInfo],
        query=(
            "mine",
            "visibility",
            "purpose",
            "sub_purpose",
            "state",
            "algorithm_id",
            "dataset_id",
            "q",
        ),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(TaskFilter)
        self.reply(await self.run(self.training.list, self.actor, filters))

    @operation(
        'Create a training task (a draft, or queued at once with "start": true)',
        TaskCreate,
        TaskInfo,
        201,
    )
    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(TaskCreate)
        self.reply(await self.run(self.training.create, self.actor, spec), status=201)


class TaskHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    @operation("One training task", response=TaskInfo)
    @web.authenticated
    @authorized
    async def get(self, task_id: str) -> None:
        self.reply(await self.run(self.training.get, self.actor, int(task_id)))

    @operation("Edit a training task (owner; a draft or a finished task)", TaskUpdate, TaskInfo)
    @web.authenticated
    @authorized
    async def patch(self, task_id: str) -> None:
        changes = self.parse(TaskUpdate)
        self.reply(await self.run(self.training.update, self.actor, int(task_id), changes))

    @operation(
        "Delete a task that is not queued or running, its runs, logs and metrics (owner); "
        "its model versions stay",
        status=204,
    )
    @web.authenticated
    @authorized
    async def delete(self, task_id: str) -> None:
        await self.run(self.training.delete, self.actor, int(task_id))
        self.set_status(204)
        self.finish()


class StartHandler(TrainingHandlerBase):
    """POST: queue a draft's first run (the runner starts it when there is room)."""

    @operation("Queue a draft's first run (owner)", response=TaskInfo)
    @web.authenticated
    @authorized
    async def post(self, task_id: str) -> None:
        self.reply(await self.run(self.training.start, self.actor, int(task_id)))


class StopHandler(TrainingHandlerBase):
    """POST: a queued task stops at once, a running one once its container has exited
    (SIGTERM, SIGKILL after 10 s)."""

    @operation(
        "Stop a queued task at once, a running one once its container has exited (owner)",
        response=TaskInfo,
    )
    @web.authenticated
    @authorized
    async def post(self, task_id: str) -> None:
        self.reply(await self.run(self.training.stop, self.actor, int(task_id)))


class RetryHandler(TrainingHandlerBase):
    """POST: queue a new run of a finished task."""

    @operation("Queue a new run of a finished task (owner)", response=TaskInfo)
    @web.authenticated
    @authorized
    async def post(self, task_id: str) -> None:
        self.reply(await self.run(self.training.retry, self.actor, int(task_id)))


class MetricsHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    @operation(
        "The run's metric lines after line `after` (at most 5000); `job_id`: an earlier run",
        response=list[MetricPoint],
        query=("after", "job_id"),
    )
    @web.authenticated
    @authorized
    async def get(self, task_id: str) -> None:
        q = self.query(MetricsQuery)
        points = await self.run(self.training.metrics, self.actor, int(task_id), q.after, q.job_id)
        self.set_header("Cache-Control", "no-store")
        self.reply(points)


class RunsHandler(TrainingHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_TRAINING)

    @operation("Every run of the task (its jobs)", response=list[TrainingRunInfo])
    @web.authenticated
    @authorized
    async def get(self, task_id: str) -> None:
        self.reply(await self.run(self.training.runs, self.actor, int(task_id)))


handlers = [
    (rf"{API}/training/tasks", TasksHandler),
    (rf"{API}/training/tasks/(\d+)", TaskHandler),
    (rf"{API}/training/tasks/(\d+)/start", StartHandler),
    (rf"{API}/training/tasks/(\d+)/stop", StopHandler),
    (rf"{API}/training/tasks/(\d+)/retry", RetryHandler),
    (rf"{API}/training/tasks/(\d+)/metrics", MetricsHandler),
    (rf"{API}/training/tasks/(\d+)/runs", RunsHandler),
]
