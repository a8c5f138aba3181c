"""The states of a job, defined once."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """A job's state::

        queued --claim--> starting --> running --> succeeded | failed | stopped
           |                  \\           |
           +--cancel--> stopped +--cancel--> stopping --> stopped

    ``starting``: claimed by a server's runner, being prepared (its container is not
    started yet). ``stopping``: a cancel was asked while it ran.
    """

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


#: claimed by a runner and not over yet
LIVE_JOB_STATES = (JobState.STARTING, JobState.RUNNING, JobState.STOPPING)
#: not over yet: queued, or live
ACTIVE_JOB_STATES = (JobState.QUEUED, *LIVE_JOB_STATES)
#: over, for good
FINISHED_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED)
