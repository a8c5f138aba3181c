"""``client.training``: training tasks, their runs and metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.client._http import parse_list, query_params
from workbench.training.schemas import MetricPoint, TaskInfo, TrainingRunInfo

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class TrainingAPI:
    """Training tasks: ``create`` takes ``TaskCreate`` fields (``start=True`` queues the
    first run at once); a task's log and metrics are read while it runs."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[TaskInfo]:
        """Filters: mine, visibility, purpose, sub_purpose, state, algorithm_id,
        dataset_id, q."""
        return parse_list(
            TaskInfo, self._c.json("GET", "/training/tasks", params=query_params(filters))
        )

    def create(self, **fields: Any) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", "/training/tasks", json=fields))

    def get(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("GET", f"/training/tasks/{task_id}"))

    def update(self, task_id: int, **changes: Any) -> TaskInfo:
        data = self._c.json("PATCH", f"/training/tasks/{task_id}", json=changes)
        return TaskInfo.model_validate(data)

    def delete(self, task_id: int) -> None:
        self._c.request("DELETE", f"/training/tasks/{task_id}")

    def start(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", f"/training/tasks/{task_id}/start"))

    def stop(self, task_id: int) -> TaskInfo:
        """Stop it; a running task's container gets SIGTERM, then SIGKILL after 10 s."""
        data = self._c.json("POST", f"/training/tasks/{task_id}/stop", timeout=120)
        return TaskInfo.model_validate(data)

    def retry(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", f"/training/tasks/{task_id}/retry"))

    def metrics(
        self, task_id: int, after: int = -1, job_id: int | None = None
    ) -> list[MetricPoint]:
        """The metric lines after line ``after`` (at most 5000 a call)."""
        params = query_params({"after": after, "job_id": job_id})
        data = self._c.json("GET", f"/training/tasks/{task_id}/metrics", params=params)
        return parse_list(MetricPoint, data)

    def runs(self, task_id: int) -> list[TrainingRunInfo]:
        return parse_list(TrainingRunInfo, self._c.json("GET", f"/training/tasks/{task_id}/runs"))
