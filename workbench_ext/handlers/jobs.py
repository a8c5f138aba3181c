"""/jobs: every long operation of the caller's (an admin: anyone's), with its progress,
log and cancel. The panel and the CLI follow builds, image loads and training runs here."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from workbench import scopes
from workbench.jobs.schemas import JobFilter, JobInfo, JobLogPage
from workbench.jobs.service import JobService
from workbench_ext.handlers.base import API, WorkbenchHandler, operation


class JobLogQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0)


class JobHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:jobs"

    @property
    def jobs(self) -> JobService:
        return self.workbench.jobs


class JobsHandler(JobHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_JOBS)

    @operation(
        "My jobs, newest first (builds, image loads, training runs...); `all`: everyone's (admins)",
        response=list[JobInfo],
        query=("kind", "state", "target_type", "target_id", "all", "limit"),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(JobFilter)
        self.set_header("Cache-Control", "no-store")
        self.reply(await self.run(self.jobs.list, self.actor, filters))


class JobHandler(JobHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_JOBS)

    @operation("One job: state, progress, message, result", response=JobInfo)
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.reply(await self.run(self.jobs.get, self.actor, int(job_id)))


class JobLogHandler(JobHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_JOBS)

    @operation(
        "The job's log from byte `offset` (whole lines while it runs)",
        response=JobLogPage,
        query=("offset",),
    )
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        q = self.query(JobLogQuery)
        self.set_header("Cache-Control", "no-store")
        self.reply(await self.run(self.jobs.tail, self.actor, int(job_id), q.offset))


class JobCancelHandler(JobHandlerBase):
    @operation(
        "Cancel it: a queued job stops at once, a running one at its next step (a "
        "container: SIGTERM, SIGKILL after 10 s)",
        response=JobInfo,
    )
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.reply(await self.run(self.jobs.cancel, self.actor, int(job_id)))


handlers = [
    (rf"{API}/jobs", JobsHandler),
    (rf"{API}/jobs/(\d+)", JobHandler),
    (rf"{API}/jobs/(\d+)/log", JobLogHandler),
    (rf"{API}/jobs/(\d+)/cancel", JobCancelHandler),
]
