"""``workbench task``: training tasks (through the REST API)."""

from __future__ import annotations

import json
from typing import Any

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.enums import Purpose, SubPurpose, TaskState, Visibility
from workbench.training.schemas import TaskInfo

task = click.Group(
    "task", help="Training tasks: an algorithm trained on a dataset (through the REST API)."
)


def _print_task(t: TaskInfo) -> None:
    common.echo_row(
        t, 24, 16, f"algorithm {t.algorithm_id:<3} dataset {t.dataset_id:<3} {t.state:<9} {t.owner}"
    )
    if t.state_reason:
        click.echo(f"      {t.state_reason.splitlines()[0]}")
    ev = t.evaluation
    if ev is not None and ev.accuracy is not None and ev.f1 is not None:
        click.echo(f"      accuracy {ev.accuracy:.4f}, macro F1 {ev.f1:.4f}")
    if t.model_version_id is not None:
        click.echo(f"      model {t.model_id}, latest version id {t.model_version_id}")


def _parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        values[name] = value
    return values


@common.list_command(task, "list", _print_task)
@common.mine_option
@click.option("--state", type=common.choice(TaskState))
@click.option("--purpose", type=common.choice(Purpose))
@common.search_option
@common.json_option
def task_list(c: WorkbenchClient, **filters: Any) -> list[TaskInfo]:
    """Training tasks I can see (mine and public ones), newest first."""
    return c.training.list(**filters)


_by_id = common.IdCommands(task, "training task", "task_id", lambda c: c.training, _print_task)
_by_id.show("Everything about a task, its evaluation included, as JSON.")
_by_id.action("start", "Queue a draft's first run.")
_by_id.action("stop", "Stop a queued or running task.")
_by_id.action("retry", "Queue a new run of a finished task.")
_by_id.delete(
    "Delete the task, its runs, logs and metrics?", "Delete a task (its model versions stay)."
)


@task.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=common.choice(Purpose), required=True)
@click.option("--sub-purpose", type=common.choice(SubPurpose), required=True)
@click.option("--algorithm", "algorithm_id", type=int, required=True, help="Its id.")
@click.option("--dataset", "dataset_id", type=int, required=True, help="An online dataset's id.")
@click.option(
    "--train-ratio",
    type=float,
    help="Share of the dataset trained on (default: the dataset's; not for a dataset with "
    "an independent test set).",
)
@click.option("--param", "params", multiple=True, help="NAME=VALUE of a declared parameter.")
@click.option("--cpus", type=float, default=1.0, show_default=True)
@click.option("--memory-mb", type=int, default=2048, show_default=True)
@click.option("--gpus", type=int, default=0, show_default=True)
@click.option("--base-model-version", "base_model_version_id", type=int, help="Transfer training.")
@click.option("--description", default="")
@click.option("--visibility", type=common.choice(Visibility), default="private", show_default=True)
@click.option("--start", is_flag=True, help="Queue it at once instead of saving a draft.")
@common.friendly
def task_create(params: tuple[str, ...], **fields: Any) -> None:
    """Create a training task (a draft, or queued with --start); prints its id."""
    body = common.given(fields)
    with common.client() as c:
        t = c.training.create(**body, parameters=_parameters(params))
    click.echo(t.id)


@task.command("set")
@click.argument("task_id", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--visibility", type=common.choice(Visibility))
@click.option("--train-ratio", type=float)
@click.option("--param", "params", multiple=True, help="NAME=VALUE; replaces all of them.")
@click.option("--cpus", type=float)
@click.option("--memory-mb", type=int)
@click.option("--gpus", type=int)
@common.friendly
def task_set(task_id: int, params: tuple[str, ...], **changes: Any) -> None:
    """Edit a draft or a finished task."""
    body = common.given(changes)
    if params:
        body["parameters"] = _parameters(params)
    with common.client() as c:
        _print_task(c.training.update(task_id, **body))


@common.id_command(task, "logs", "task_id")
@common.follow_option
@click.option("--run", "job_id", type=int, help="An earlier run's id (see `task runs`).")
def task_logs(c: WorkbenchClient, task_id: int, follow: bool, job_id: int | None) -> None:
    """The log of the task's current run (its job's), or of an earlier one."""
    common.show_log(c, job_id or c.training.get(task_id).job_id, follow)


@common.id_command(task, "runs", "task_id")
def task_runs(c: WorkbenchClient, task_id: int) -> None:
    """Every run of the task."""
    for run in c.training.runs(task_id):
        code = "" if run.exit_code is None else f"exit {run.exit_code}"
        click.echo(
            f"{run.id:>5}  {run.created_at:%Y-%m-%d %H:%M}  {run.state:<9} {code:<8} "
            f"{run.message.splitlines()[0] if run.message else ''}"
        )


@common.id_command(task, "metrics", "task_id")
@click.option("--run", "job_id", type=int, help="An earlier run's id (see `task runs`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def task_metrics(c: WorkbenchClient, task_id: int, job_id: int | None, as_json: bool) -> None:
    """The metrics the run wrote (one line of its metrics file each)."""
    points = []
    while batch := c.training.metrics(task_id, points[-1].seq if points else -1, job_id):
        points.extend(batch)
    if as_json:
        for p in points:
            click.echo(json.dumps(p.values))
        return
    columns = list(dict.fromkeys(k for p in points for k in p.values))
    if not columns:
        return
    click.echo("  ".join(f"{c:>12}" for c in columns))
    for p in points:
        click.echo("  ".join(f"{_cell(p.values.get(c)):>12}" for c in columns))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)
