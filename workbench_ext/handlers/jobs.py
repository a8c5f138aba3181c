"""/jobs: every long operation of the caller's (an admin: anyone's), with its progress,
log and cancel. The panel and the CLI follow builds, image loads and training runs here."""

from __future__ import annotations

from pydantic import Field

from workbench import scopes
from workbench.jobs.schemas import JobFilter, JobInfo, JobLogPage
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.resource import Resource, Schemas, Strict

#: the path parameter of one job's routes
JOB = {"job_id": int}


class JobLogQuery(Strict):
    offset: int = Field(0, ge=0)


class JobHandlerBase(WorkbenchHandler):
    """A job changes under its reader: no answer about one is cached."""

    auth_resource = "workbench:jobs"

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")


JOBS = Resource("Job", JobHandlerBase, "jobs", JOB, read=scopes.READ_JOBS)
JobsHandler, JobHandler = JOBS.standard(
    Schemas(JobInfo, filter=JobFilter),
    {
        "list": "My jobs, newest first (builds, image loads, training runs...); `all`: "
        "everyone's (admins)",
        "get": "One job: state, progress, message, result",
    },
)
JobTailHandler = JOBS.view(
    "tail",
    "The job's log from byte `offset` (whole lines while it runs)",
    JobLogPage,
    query=JobLogQuery,
    spread=True,
)
JobCancelHandler = JOBS.action(
    "cancel",
    "Cancel it: a queued job stops at once, a running one at its next step (a "
    "container: SIGTERM, SIGKILL after 10 s)",
    JobInfo,
)


handlers = [
    (rf"{API}/jobs", JobsHandler),
    (rf"{API}/jobs/(\d+)", JobHandler),
    (rf"{API}/jobs/(\d+)/log", JobTailHandler),
    (rf"{API}/jobs/(\d+)/cancel", JobCancelHandler),
]
