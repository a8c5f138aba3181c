"""``client.jobs``: the long operations (builds, image loads, training runs, conversions,
deploys): progress, log, wait, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from workbench.client._http import LONG, parse_list, query_params
from workbench.jobs.schemas import JobInfo, JobLogPage, wait_for_job
from workbench.jobs.states import FINISHED_JOB_STATES

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class JobsAPI:
    """Long operations (builds, image loads, training runs): progress, log, cancel."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[JobInfo]:
        """Filters: kind, state, target_type, target_id, all (admins), limit."""
        return parse_list(JobInfo, self._c.json("GET", "/jobs", params=query_params(filters)))

    def get(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(self._c.json("GET", f"/jobs/{job_id}"))

    def log(self, job_id: int, offset: int = 0) -> JobLogPage:
        data = self._c.json("GET", f"/jobs/{job_id}/log", params={"offset": offset})
        return JobLogPage.model_validate(data)

    def follow(self, job_id: int, interval: float = 1.0) -> Iterator[str]:
        """The log's lines as they are written, until the job is over: the one way to read
        any long work's log (a build, a training run, a conversion, a deploy...)."""
        offset = 0
        while True:
            page = self.log(job_id, offset)
            yield from page.text.splitlines()
            offset = page.next_offset
            if not page.text:
                if page.state in FINISHED_JOB_STATES:
                    return
                time.sleep(interval)

    def cancel(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(self._c.json("POST", f"/jobs/{job_id}/cancel", timeout=LONG))

    def wait(
        self,
        job_id: int,
        *,
        timeout: float = 3600,
        interval: float = 0.5,
        progress: Callable[[JobInfo], None] | None = None,
        check: bool = True,
    ) -> JobInfo:
        """Poll until the job is over (``progress`` is called with each reading); with
        ``check``, a failed job raises its error (the class the server raised)."""
        return wait_for_job(
            lambda: self.get(job_id),
            timeout=timeout,
            interval=interval,
            progress=progress,
            check=check,
        )
