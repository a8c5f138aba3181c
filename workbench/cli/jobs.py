"""``workbench job``: the long operations (builds, image loads, training runs) of mine, with
their progress and log; cancel one."""

from __future__ import annotations

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.jobs.schemas import JobInfo
from workbench.jobs.states import JobState

job = click.Group("job", help="Long operations: list, show, log, cancel.")


def _print_job(info: JobInfo) -> None:
    target = f"{info.target_type} {info.target_id}" if info.target_type else "-"
    click.echo(
        f"{info.id:>5}  {info.kind:<18} {info.state:<10} {info.progress:>4.0%}  {target:<22} "
        f"{info.message.splitlines()[0] if info.message else ''}"
    )


@common.list_command(job, "list", _print_job)
@click.option("--kind", help="training, environment-image, algorithm-image...")
@click.option("--state", type=common.choice(JobState))
@click.option("--all", "all_", is_flag=True, help="Everyone's jobs (admins).")
@click.option("--limit", type=int, default=50, show_default=True)
@common.json_option
def job_list(
    c: WorkbenchClient, kind: str | None, state: str | None, all_: bool, limit: int
) -> list[JobInfo]:
    """My jobs, newest first."""
    filters = {"kind": kind, "state": state, "all": all_ or None, "limit": limit}
    return c.jobs.list(**common.given(filters))


_by_id = common.IdCommands(job, "job", "job_id", lambda c: c.jobs, _print_job)
_by_id.show("One job, as JSON.")
_by_id.action("cancel", "Cancel it: a queued job stops at once, a running one at its next step.")


@common.id_command(job, "log", "job_id")
@common.follow_option
def job_log(c: WorkbenchClient, job_id: int, follow: bool) -> None:
    """The job's log."""
    common.show_log(c, job_id, follow)


@common.id_command(job, "wait", "job_id")
def job_wait(c: WorkbenchClient, job_id: int) -> None:
    """Wait until the job is over; exit non-zero if it failed."""
    common.follow_job(c, job_id, quiet=True)
    _print_job(c.jobs.get(job_id))
