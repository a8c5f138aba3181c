"""One runner for every long operation (builds, image loads, training, and later
conversion, benchmark and deploy): queue, claim, log, progress, cancel, re-attach after a
restart. It knows no concrete kind: each area registers its :class:`JobKind`."""

from workbench.jobs.kinds import JobCancelled, JobContext, JobKind, Outcome
from workbench.jobs.runner import JobRunner, job_folder
from workbench.jobs.schemas import JobFilter, JobInfo, JobLogPage
from workbench.jobs.service import JobService
from workbench.jobs.states import (
    ACTIVE_JOB_STATES,
    FINISHED_JOB_STATES,
    LIVE_JOB_STATES,
    JobState,
)

__all__ = [
    "ACTIVE_JOB_STATES",
    "FINISHED_JOB_STATES",
    "LIVE_JOB_STATES",
    "JobCancelled",
    "JobContext",
    "JobFilter",
    "JobInfo",
    "JobKind",
    "JobLogPage",
    "JobRunner",
    "JobService",
    "JobState",
    "Outcome",
    "job_folder",
]
