"""``workbench algorithm``: the algorithm library (through the REST API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.enums import ImageKind, PublishState, Purpose, SubPurpose, Visibility

algorithm = click.Group(
    "algorithm",
    help="The algorithm library: a training and an inference image with how to run them.",
)


def _print_algorithm(algo: AlgorithmInfo) -> None:
    images = f"train {algo.train.state:<8} predict {algo.predict.state}"
    common.echo_row(algo, 24, 22, f"{algo.state:<8} {algo.visibility:<8} {algo.owner:<10} {images}")
    for kind, image in (("train", algo.train), ("predict", algo.predict)):
        if image.state_reason:
            click.echo(f"      {kind}: {image.state_reason.splitlines()[0]}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} must hold a JSON object of algorithm fields.")
    return data


@common.list_command(algorithm, "list", _print_algorithm)
@click.option("--visibility", type=click.Choice(["mine", *(v.value for v in Visibility)]))
@click.option("--purpose", type=common.choice(Purpose))
@click.option("--sub-purpose", type=common.choice(SubPurpose))
@click.option("--state", type=common.choice(PublishState))
@common.search_option
@common.json_option
def algorithm_list(c: WorkbenchClient, **filters: Any) -> list[AlgorithmInfo]:
    """Algorithms you can see: yours, public and preset."""
    return c.algorithms.list(**filters)


_by_id = common.IdCommands(
    algorithm, "algorithm", "algorithm_id", lambda c: c.algorithms, _print_algorithm
)
_by_id.show("One algorithm with both images' settings, state and config, as JSON.")
_by_id.action("publish", "Put the algorithm online: training tasks may use it.")
_by_id.action(
    "offline",
    "Take the algorithm offline: new training tasks refuse it, old ones keep their history.",
    method="take_offline",
)
_by_id.delete(
    "Delete the algorithm and its images?",
    "Delete an algorithm no training task or model version uses, and its images.",
)


@algorithm.command("create")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--visibility", type=common.choice(Visibility), help="Default: the file's, else private."
)
@common.friendly
def algorithm_create(spec: Path, visibility: str | None) -> None:
    """Register an algorithm from a JSON file (name, description, purpose, sub_purpose,
    train and predict settings: the shape of examples/algorithms/*/algorithm.json); prints
    its id."""
    fields = _read_json(spec)
    if visibility:
        fields["visibility"] = visibility
    with common.client() as c:
        click.echo(c.algorithms.create(**fields).id)


@algorithm.command("set")
@click.argument("algorithm_id", type=int)
@click.option(
    "--from",
    "spec",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON file of the fields to change (train and predict replace the settings whole).",
)
@click.option("--name")
@click.option("--description")
@click.option("--visibility", type=common.choice(Visibility))
@common.friendly
def algorithm_set(algorithm_id: int, spec: Path | None, **changes: Any) -> None:
    """Edit an algorithm (run settings only while it is not online)."""
    fields = _read_json(spec) if spec else {}
    fields.update(common.given(changes))
    with common.client() as c:
        _print_algorithm(c.algorithms.update(algorithm_id, **fields))


def _follow_load(c: WorkbenchClient, algo: AlgorithmInfo, kind: str, detach: bool) -> None:
    """Show the image load's log (a job) until it is over (unless ``detach``), then the
    algorithm."""
    common.follow_job(c, (algo.train if kind == "train" else algo.predict).job_id, detach=detach)
    _print_algorithm(c.algorithms.get(algo.id))


@common.id_command(algorithm, "upload-image", "algorithm_id")
@click.argument("kind", type=common.choice(ImageKind))
@click.argument("tar", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.detach_option
def algorithm_upload_image(
    c: WorkbenchClient, algorithm_id: int, kind: str, tar: Path, detach: bool
) -> None:
    """Upload a `docker save` TAR as the train or predict image (checked, then loaded)."""
    with click.progressbar(length=tar.stat().st_size, label=tar.name) as bar:
        algo = c.algorithms.upload_image(
            algorithm_id, kind, tar, progress=common.upload_progress(bar), wait=False
        )
    _follow_load(c, algo, kind, detach)


@common.id_command(algorithm, "pull", "algorithm_id")
@click.argument("kind", type=common.choice(ImageKind))
@click.argument("reference")
@common.detach_option
def algorithm_pull(
    c: WorkbenchClient, algorithm_id: int, kind: str, reference: str, detach: bool
) -> None:
    """`docker pull` REFERENCE as the train or predict image (Docker Engine servers only)."""
    algo = c.algorithms.pull_image(algorithm_id, kind, reference, wait=False)
    _follow_load(c, algo, kind, detach)


@common.id_command(algorithm, "check", "workspace_id")
@click.argument("filename")
def algorithm_check(c: WorkbenchClient, workspace_id: int, filename: str) -> None:
    """Check docker_image/FILENAME of a workspace as publishing it would (loads nothing)."""
    report = c.workspaces.inspect_image(workspace_id, filename)
    click.echo(report.model_dump_json(indent=1))
    if not report.ok:
        raise click.ClickException("; ".join(report.problems))


@common.id_command(algorithm, "from-workspace", "algorithm_id")
@click.argument("kind", type=common.choice(ImageKind))
@click.argument("workspace_id", type=int)
@click.argument("filename")
@common.detach_option
def algorithm_from_workspace(
    c: WorkbenchClient, algorithm_id: int, kind: str, workspace_id: int, filename: str, detach: bool
) -> None:
    """Publish docker_image/FILENAME (<kind>-<name>.tar) of a workspace as the image."""
    algo = c.algorithms.image_from_workspace(algorithm_id, kind, workspace_id, filename, wait=False)
    _follow_load(c, algo, kind, detach)
