"""``workbench job``: the long operations (builds, image loads, training runs) of mine, with
their progress and log; cancel one."""

from __future__ import annotations

import click

from workbench.cli.common import (
    choice,
    client,
    echo_json,
    follow_job,
    follow_option,
    friendly,
    show_log,
)
from workbench.jobs.schemas import JobInfo
from workbench.jobs.states import JobState


@click.group()
def job() -> None:
    """Long operations: list, show, log, cancel."""


def _print_job(info: JobInfo) -> None:
    target = f"{info.target_type} {info.target_id}" if info.target_type else "-"
    click.echo(
        f"{info.id:>5}  {info.kind:<18} {info.state:<10} {info.progress:>4.0%}  {target:<22} "
        f"{info.message.splitlines()[0] if info.message else ''}"
    )


@job.command("list")
@click.option("--kind", help="training, environment-image, algorithm-image...")
@click.option("--state", type=choice(JobState))
@click.option("--all", "all_", is_flag=True, help="Everyone's jobs (admins).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def job_list(kind: str | None, state: str | None, all_: bool, limit: int, as_json: bool) -> None:
    """My jobs, newest first."""
    filters = {"kind": kind, "state": state, "all": all_ or None, "limit": limit}
    with client() as c:
        jobs = c.jobs.list(**{k: v for k, v in filters.items() if v is not None})
    if as_json:
        echo_json(jobs)
        return
    for info in jobs:
        _print_job(info)


@job.command("show")
@click.argument("job_id", type=int)
@friendly
def job_show(job_id: int) -> None:
    """One job, as JSON."""
    with client() as c:
        click.echo(c.jobs.get(job_id).model_dump_json(indent=1))


@job.command("log")
@click.argument("job_id", type=int)
@follow_option
@friendly
def job_log(job_id: int, follow: bool) -> None:
    """The job's log."""
    with client() as c:
        show_log(c, job_id, follow)


@job.command("wait")
@click.argument("job_id", type=int)
@friendly
def job_wait(job_id: int) -> None:
    """Wait until the job is over; exit non-zero if it failed."""
    with client() as c:
        follow_job(c, job_id, quiet=True)
        _print_job(c.jobs.get(job_id))


@job.command("cancel")
@click.argument("job_id", type=int)
@friendly
def job_cancel(job_id: int) -> None:
    """Cancel it: a queued job stops at once, a running one at its next step."""
    with client() as c:
        _print_job(c.jobs.cancel(job_id))
