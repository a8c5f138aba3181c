"""The REST bodies of the jobs area."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import WorkbenchError, rebuild_error
from workbench.jobs.states import FINISHED_JOB_STATES, JobState

#: the error code of a job that failed without a more precise one
JOB_FAILED = "job_failed"


class JobInfo(BaseModel):
    id: int
    kind: str
    owner: str
    #: what the job works on (``environment``, ``algorithm_image``, ``training_task``...)
    target_type: str
    target_id: int | None
    state: JobState
    #: 0..1, as far as the kind can tell
    progress: float
    #: how it ended (or what it does now)
    message: str
    exit_code: int | None
    #: the server that runs (or ran) it
    instance: str
    cpus: float
    memory_mb: int
    gpus: int
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = None
    state: JobState | None = None
    target_type: str | None = None
    target_id: int | None = None
    #: admins only: every user's jobs, not only their own
    all: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


class JobLogPage(BaseModel):
    """A page of a job's log: whole lines while it may still write."""

    text: str
    offset: int
    next_offset: int
    state: JobState


def job_error(info: JobInfo) -> WorkbenchError:
    """The error a failed job ended with, as the class its code names."""
    details = info.result.get("details")
    return rebuild_error(
        str(info.result.get("error", JOB_FAILED)),
        info.message,
        {**(details if isinstance(details, dict) else {}), "job": info.id},
    )


def wait_for_job(
    read: Callable[[], JobInfo],
    *,
    timeout: float,
    interval: float,
    progress: Callable[[JobInfo], None] | None = None,
    check: bool = False,
) -> JobInfo:
    """Read the job (``read``: in-process or over REST) until it is over; ``progress`` gets
    each reading. With ``check``, a failed job raises its error again."""
    deadline = time.monotonic() + timeout
    while True:
        info = read()
        if progress is not None:
            progress(info)
        if info.state in FINISHED_JOB_STATES:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {info.id} is still {info.state} after {timeout} s")
        time.sleep(interval)
    if check and info.state == JobState.FAILED:
        raise job_error(info)
    return info
