"""``workbench model``: the model registry (through the REST API): list and search, show,
edit, tags, aliases, compare versions, download a version's files, delete."""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.cli.common import choice, client, echo_json, friendly, given
from workbench.client import WorkbenchClient
from workbench.enums import Visibility
from workbench.models.schemas import ModelInfo, ModelVersionInfo


@click.group()
def model() -> None:
    """The model registry: models, versions, tags, aliases, compare, download."""


def _print_model(info: ModelInfo) -> None:
    latest = f"v{info.latest_version.version}" if info.latest_version else "-"
    aliases = " ".join(f"{a}->v{n}" for a, n in info.aliases.items())
    click.echo(
        f"{info.id:>5}  {info.name:<24} {info.purpose or '-':<7} {latest:<5} "
        f"{info.visibility:<8} {info.owner:<10} {aliases}"
    )


def _print_version(v: ModelVersionInfo) -> None:
    accuracy = v.evaluation.accuracy if v.evaluation else None
    scored = f"accuracy {accuracy:.3f}" if accuracy is not None else ""
    click.echo(
        f"  v{v.version:<3} id {v.id:<5} {v.framework or '-':<10} task {v.task_id or '-':<5} "
        f"{scored:<16} {' '.join(v.aliases)} {json.dumps(v.tags) if v.tags else ''}".rstrip()
    )


@model.command("list")
@click.option("--mine", is_flag=True, help="Only my models.")
@click.option("--visibility", type=choice(Visibility))
@click.option("--q", help="Text found in the name or the description.")
@click.option("--name", help="The exact name.")
@click.option("--tag", help="KEY or KEY=VALUE, on the model or one of its versions.")
@click.option("--purpose", help="image, text, ...")
@click.option("--framework", help="pytorch, tensorflow, sklearn, onnx (of a version).")
@click.option("--owner", help="The owner's username.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def model_list(mine: bool, as_json: bool, **filters: str | None) -> None:
    """Models I can see, newest first."""
    with client() as c:
        models = c.models.list(mine=mine or None, **given(filters))
    if as_json:
        echo_json(models)
        return
    for info in models:
        _print_model(info)


@model.command("show")
@click.argument("model_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@friendly
def model_show(model_id: int, as_json: bool) -> None:
    """A model and its versions."""
    with client() as c:
        detail = c.models.get(model_id)
    if as_json:
        click.echo(detail.model_dump_json(indent=1))
        return
    _print_model(detail)
    if detail.description:
        click.echo(f"  {detail.description}")
    if detail.tags:
        click.echo(f"  tags {json.dumps(detail.tags)}")
    for version in detail.versions:
        _print_version(version)


@model.command("version")
@click.argument("version_id", type=int)
@friendly
def model_version(version_id: int) -> None:
    """One version (by its id), as JSON: lineage, evaluation, signature, tags."""
    with client() as c:
        click.echo(c.models.version(version_id).model_dump_json(indent=1))


@model.command("set")
@click.argument("model_id", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--purpose")
@click.option("--visibility", type=choice(Visibility))
@friendly
def model_set(model_id: int, **changes: str | None) -> None:
    """Change a model's name, description, purpose or visibility."""
    with client() as c:
        _print_model(c.models.update(model_id, **given(changes)))


@model.command("tag")
@click.argument("model_id", type=int)
@click.argument("key")
@click.argument("value")
@click.option("--version-id", type=int, help="Tag this version instead of the model.")
@friendly
def model_tag(model_id: int, key: str, value: str, version_id: int | None) -> None:
    """Set a tag KEY=VALUE on a model (or one of its versions)."""
    with client() as c:
        if version_id is not None:
            _check_version_of(c, model_id, version_id)
            tags = c.models.set_version_tag(version_id, key, value)
        else:
            tags = c.models.set_tag(model_id, key, value)
    click.echo(json.dumps(tags))


@model.command("untag")
@click.argument("model_id", type=int)
@click.argument("key")
@click.option("--version-id", type=int, help="Untag this version instead of the model.")
@friendly
def model_untag(model_id: int, key: str, version_id: int | None) -> None:
    """Remove a tag."""
    with client() as c:
        if version_id is not None:
            _check_version_of(c, model_id, version_id)
            tags = c.models.delete_version_tag(version_id, key)
        else:
            tags = c.models.delete_tag(model_id, key)
    click.echo(json.dumps(tags))


@model.command("alias")
@click.argument("model_id", type=int)
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", is_flag=True, help="Remove the alias.")
@friendly
def model_alias(model_id: int, alias: str, version: int | None, delete: bool) -> None:
    """Point ALIAS at VERSION (a number), show where it points, or --delete it."""
    with client() as c:
        if delete:
            click.echo(json.dumps(c.models.delete_alias(model_id, alias)))
        elif version is not None:
            click.echo(json.dumps(c.models.set_alias(model_id, alias, version)))
        else:
            _print_version(c.models.alias(model_id, alias))


@model.command("compare")
@click.argument("version_ids", type=int, nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def model_compare(version_ids: tuple[int, ...], as_json: bool) -> None:
    """Two or more versions (by id) side by side: parameters and metrics; * marks what
    differs."""
    with client() as c:
        table = c.models.compare(*version_ids)
    if as_json:
        click.echo(table.model_dump_json(indent=1))
        return
    heads = [f"{name} v{v.version}" for name, v in zip(table.models, table.versions, strict=True)]
    click.echo(f"{'':<20} " + " ".join(f"{h:>16}" for h in heads))
    for name, values in table.parameters.items():
        mark = "*" if name in table.differing else " "
        click.echo(f"{mark}{name:<19} " + " ".join(f"{_cell(v):>16}" for v in values))
    for name, numbers in table.metrics.items():
        click.echo(f" {name:<19} " + " ".join(f"{_cell(v):>16}" for v in numbers))


def _check_version_of(c: WorkbenchClient, model_id: int, version_id: int) -> None:
    version = c.models.version(version_id)
    if version.model_id != model_id:
        raise click.BadParameter(
            f"version {version_id} is v{version.version} of model {version.model_id}, not of "
            f"model {model_id}",
            param_hint="--version-id",
        )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@model.command("download")
@click.argument("version_id", type=int)
@click.option("--to", "dest", type=click.Path(path_type=Path), default=Path("."))
@friendly
def model_download(version_id: int, dest: Path) -> None:
    """Save a version's native files as a zip (into a folder, or at a file path)."""
    with client() as c:
        click.echo(str(c.models.download(version_id, dest)))


@model.command("delete")
@click.argument("model_id", type=int)
@click.option("--version-id", type=int, help="Delete only this version.")
@friendly
def model_delete(model_id: int, version_id: int | None) -> None:
    """Delete a model with its versions, or one version; refused while in use."""
    with client() as c:
        if version_id is not None:
            _check_version_of(c, model_id, version_id)
            c.models.delete_version(version_id)
            click.echo(f"deleted version {version_id}")
        else:
            c.models.delete(model_id)
            click.echo(f"deleted model {model_id}")
