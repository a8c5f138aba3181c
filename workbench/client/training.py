"""``client.training``: training tasks, their runs and metrics."""

from __future__ import annotations

from workbench.client._http import EditableAPI, parse_list, query_params
from workbench.training.schemas import MetricPoint, TaskInfo, TrainingRunInfo


class TrainingAPI(EditableAPI[TaskInfo]):
    """Training tasks: ``create`` takes ``TaskCreate`` fields (``start=True`` queues the
    first run at once), ``update`` ``TaskUpdate`` fields; ``list`` filters: mine,
    visibility, purpose, sub_purpose, state, algorithm_id, dataset_id, q. A task's log and
    metrics are read while it runs."""

    path = "/training/tasks"
    info = TaskInfo

    def start(self, task_id: int) -> TaskInfo:
        return self._call("POST", task_id, "start")

    def stop(self, task_id: int) -> TaskInfo:
        """Stop it; a running task's container gets SIGTERM, then SIGKILL after 10 s."""
        return self._call("POST", task_id, "stop", timeout=120)

    def retry(self, task_id: int) -> TaskInfo:
        return self._call("POST", task_id, "retry")

    def metrics(
        self, task_id: int, after: int = -1, job_id: int | None = None
    ) -> list[MetricPoint]:
        """The metric lines after line ``after`` (at most 5000 a call)."""
        params = query_params({"after": after, "job_id": job_id})
        data = self._c.json("GET", f"/training/tasks/{task_id}/metrics", params=params)
        return parse_list(MetricPoint, data)

    def runs(self, task_id: int) -> list[TrainingRunInfo]:
        return parse_list(TrainingRunInfo, self._c.json("GET", f"/training/tasks/{task_id}/runs"))
