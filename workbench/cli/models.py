"""``workbench model``: the model registry (through the REST API): list and search, show,
edit, tags, aliases, compare versions, download a version's files, delete; import a model
trained elsewhere; convert and benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.enums import Visibility
from workbench.models.formats import IMPORT_KINDS
from workbench.models.schemas import BenchmarkReport, FormatInfo, ModelInfo, ModelVersionInfo

model = click.Group(
    "model", help="The model registry: models, versions, tags, aliases, compare, download."
)


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


@common.list_command(model, "list", _print_model)
@common.mine_option
@click.option("--visibility", type=common.choice(Visibility))
@click.option("--q", help="Text found in the name or the description.")
@click.option("--name", help="The exact name.")
@click.option("--tag", help="KEY or KEY=VALUE, on the model or one of its versions.")
@click.option("--purpose", help="image, text, ...")
@click.option("--framework", help="pytorch, tensorflow, sklearn, onnx (of a version).")
@click.option("--owner", help="The owner's username.")
@common.json_option
def model_list(c: WorkbenchClient, **filters: Any) -> list[ModelInfo]:
    """Models I can see, newest first."""
    return c.models.list(**common.given(filters))


@common.id_command(model, "show", "model_id")
@common.json_option
def model_show(c: WorkbenchClient, model_id: int, as_json: bool) -> None:
    """A model and its versions."""
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
        for fmt in version.formats:
            _print_format(fmt)


@common.id_command(model, "version", "version_id")
def model_version(c: WorkbenchClient, version_id: int) -> None:
    """One version (by its id), as JSON: lineage, evaluation, signature, tags."""
    click.echo(c.models.version(version_id).model_dump_json(indent=1))


@common.id_command(model, "set", "model_id")
@click.option("--name")
@click.option("--description")
@click.option("--purpose")
@click.option("--visibility", type=common.choice(Visibility))
def model_set(c: WorkbenchClient, model_id: int, **changes: str | None) -> None:
    """Change a model's name, description, purpose or visibility."""
    _print_model(c.models.update(model_id, **common.given(changes)))


@common.id_command(model, "tag", "model_id")
@click.argument("key")
@click.argument("value")
@click.option("--version-id", type=int, help="Tag this version instead of the model.")
def model_tag(
    c: WorkbenchClient, model_id: int, key: str, value: str, version_id: int | None
) -> None:
    """Set a tag KEY=VALUE on a model (or one of its versions)."""
    if version_id is not None:
        _check_version_of(c, model_id, version_id)
        tags = c.models.set_version_tag(version_id, key, value)
    else:
        tags = c.models.set_tag(model_id, key, value)
    click.echo(json.dumps(tags))


@common.id_command(model, "untag", "model_id")
@click.argument("key")
@click.option("--version-id", type=int, help="Untag this version instead of the model.")
def model_untag(c: WorkbenchClient, model_id: int, key: str, version_id: int | None) -> None:
    """Remove a tag."""
    if version_id is not None:
        _check_version_of(c, model_id, version_id)
        tags = c.models.delete_version_tag(version_id, key)
    else:
        tags = c.models.delete_tag(model_id, key)
    click.echo(json.dumps(tags))


@common.id_command(model, "alias", "model_id")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", is_flag=True, help="Remove the alias.")
def model_alias(
    c: WorkbenchClient, model_id: int, alias: str, version: int | None, delete: bool
) -> None:
    """Point ALIAS at VERSION (a number), show where it points, or --delete it."""
    if delete:
        click.echo(json.dumps(c.models.delete_alias(model_id, alias)))
    elif version is not None:
        click.echo(json.dumps(c.models.set_alias(model_id, alias, version)))
    else:
        _print_version(c.models.alias(model_id, alias))


@common.id_command(model, "convert", "version_id")
@click.option(
    "--format",
    "formats",
    multiple=True,
    help="onnx, onnx-optimized, onnx-int8, tensorrt "
    "(repeat; default: every format the native model converts to).",
)
@common.detach_option
def model_convert(
    c: WorkbenchClient, version_id: int, formats: tuple[str, ...], detach: bool
) -> None:
    """Convert a version to deployment formats (a job), each checked against the native
    model; follows the job's log unless --detach."""
    started = c.models.convert(version_id, list(formats) or None, wait=False)
    try:
        common.follow_job(c, started.job_id, detach=detach)
    finally:
        if not detach:
            for fmt in c.models.formats(version_id):
                _print_format(fmt)


@model.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    required=True,
    type=click.Choice(sorted(IMPORT_KINDS)),
    help="What the file is: onnx, torchscript, keras, skops, pickle (a file or an archive); "
    "pytorch (an archive of a state dict and its module's code), savedmodel (an archive).",
)
@click.option("--name", help="The model it becomes a version of (yours; made if none).")
@click.option("--model", "model_id", type=int, help="...or the id of your model.")
@click.option("--entry", default="", help="pytorch: the module class, module:Class.")
@click.option("--file", "inner", default="", help="The model file inside an archive.")
@click.option(
    "--signature",
    default="",
    help="Inputs (and outputs) as JSON, or @FILE: needed for torchscript and pytorch.",
)
@click.option("--environment", "environment_id", type=int, help="Checked in its image.")
@click.option("--description", default="")
@click.option("--visibility", type=common.choice(Visibility), default="private", show_default=True)
@common.detach_option
@common.friendly
def model_import(
    file: Path,
    kind: str,
    signature: str,
    inner: str,
    detach: bool,
    **options: str | int | None,
) -> None:
    """Import a model trained elsewhere as a new version: the file is checked in a
    container (what it claims to be, its signature), then registered."""
    declared = None
    if signature:
        text = Path(signature[1:]).read_text() if signature.startswith("@") else signature
        try:
            declared = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--signature") from exc
    with common.client() as c:
        started = c.models.start_import(
            file,
            kind,
            signature=declared,
            file=inner,
            **{k: v for k, v in options.items() if v not in (None, "")},
        )
        common.follow_job(c, started.job_id, detach=detach)
        if not detach:
            result = c.jobs.get(started.job_id).result
            _print_version(c.models.version(int(result["version_id"])))
            for warning in result.get("warnings", []):
                click.echo(f"warning: {warning}", err=True)


@common.id_command(model, "formats", "version_id")
def model_formats(c: WorkbenchClient, version_id: int) -> None:
    """A version's converted formats with their checks."""
    for fmt in c.models.formats(version_id):
        _print_format(fmt)


def _print_format(fmt: FormatInfo) -> None:
    click.echo(
        f"  {fmt.format:<15} {fmt.state:<10} {fmt.message.splitlines()[0] if fmt.message else ''}"
    )


@common.id_command(model, "benchmark", "version_id")
@click.option(
    "--format", "formats", multiple=True, help="A verified format (repeat; default: all)."
)
@click.option("--max-batch", type=int, default=32, show_default=True)
@click.option(
    "--window",
    "window_s",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds of one measuring window.",
)
@common.detach_option
def model_benchmark(
    c: WorkbenchClient,
    version_id: int,
    formats: tuple[str, ...],
    max_batch: int,
    window_s: float,
    detach: bool,
) -> None:
    """Benchmark a version's native model and verified formats (a job), then show the
    figures unless --detach."""
    options: dict[str, object] = {"max_batch": max_batch, "window_s": window_s}
    if formats:
        options["formats"] = list(formats)
    started = c.models.benchmark(version_id, wait=False, **options)
    common.follow_job(c, started.job_id, detach=detach)
    if not detach:
        _print_report(c.models.benchmarks(version_id))


@common.id_command(model, "benchmarks", "version_id")
@click.option("--machine", help="A machine's digest (default: the newest measured).")
@common.json_option
def model_benchmarks(
    c: WorkbenchClient, version_id: int, machine: str | None, as_json: bool
) -> None:
    """A version's benchmark: latency percentiles and throughput per format and batch
    size, and the best format per latency budget."""
    report = c.models.benchmarks(version_id, machine)
    if as_json:
        click.echo(report.model_dump_json(indent=1))
    else:
        _print_report(report)


def _print_report(report: BenchmarkReport) -> None:
    hw = report.hardware
    click.echo(
        f"machine {report.machine or '-'}: {hw.get('cpu', '?')}, {hw.get('cpus_given', '?')} "
        f"CPUs{', GPU ' + hw['gpu'] if hw.get('gpu') else ''}; default format "
        f"{report.default_format or '-'}"
    )
    click.echo(
        f"  {'format':<15} {'batch':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} "
        f"{'samples/s':>10} {'MiB':>7} {'n':>6}"
    )
    for p in report.points:
        click.echo(
            f"  {p.format:<15} {p.batch_size:>5} {p.p50_ms:>9.3f} {p.p95_ms:>9.3f} "
            f"{p.p99_ms:>9.3f} {p.throughput:>10.0f} {p.memory_mb or 0:>7.0f} {p.samples:>6}"
            f"{'' if p.stable else '  (not stable)'}"
        )
    if report.best:
        click.echo("  best per p99 budget:")
    for b in report.best:
        click.echo(
            f"    <= {b.budget_ms:g} ms: {b.format} at batch {b.batch_size} "
            f"({b.throughput:.0f} samples/s, p99 {b.p99_ms:.3f} ms)"
        )


@model.command("compare")
@click.argument("version_ids", type=int, nargs=-1, required=True)
@common.json_option
@common.friendly
def model_compare(version_ids: tuple[int, ...], as_json: bool) -> None:
    """Two or more versions (by id) side by side: parameters and metrics; * marks what
    differs."""
    with common.client() as c:
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
    for name, states in table.formats.items():
        click.echo(f" {name:<19} " + " ".join(f"{_cell(v):>16}" for v in states))
    for name, latencies in table.latency_ms.items():
        click.echo(f" {name + ' p50 ms':<19} " + " ".join(f"{_cell(v):>16}" for v in latencies))
    for name, rates in table.throughput.items():
        click.echo(f" {name + ' max/s':<19} " + " ".join(f"{_cell(v):>16}" for v in rates))


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


@common.id_command(model, "download", "version_id")
@click.option("--to", "dest", type=click.Path(path_type=Path), default=Path("."))
@click.option("--format", "fmt", help="A verified format (onnx...) instead of the native files.")
def model_download(c: WorkbenchClient, version_id: int, dest: Path, fmt: str | None) -> None:
    """Save a version's native files, or one format, as a zip (into a folder, or at a file
    path)."""
    click.echo(str(c.models.download(version_id, dest, fmt)))


@common.id_command(model, "delete", "model_id")
@click.option("--version-id", type=int, help="Delete only this version.")
def model_delete(c: WorkbenchClient, model_id: int, version_id: int | None) -> None:
    """Delete a model with its versions, or one version; refused while in use."""
    if version_id is not None:
        _check_version_of(c, model_id, version_id)
        c.models.delete_version(version_id)
        click.echo(f"deleted version {version_id}")
    else:
        c.models.delete(model_id)
        click.echo(f"deleted model {model_id}")
