"""``workbench dataset``: datasets (through the REST API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.datasets.schemas import DatasetInfo
from workbench.enums import DatasetFormat, PublishState, Purpose, SplitMode, SubPurpose, Visibility

dataset = click.Group("dataset", help="Datasets (through the REST API).")


def _print_dataset(ds: DatasetInfo) -> None:
    common.echo_row(ds, 28, 16, f"{ds.format:<12} {ds.state:<8} {ds.visibility:<8} {ds.owner}")
    for split, info in ds.splits.items():
        st = info.statistics
        click.echo(
            f"      {split}: {info.archive_name} {st.samples} samples, {len(st.classes)} classes"
        )


@common.list_command(dataset, "list", _print_dataset)
@common.mine_option
@click.option("--purpose", type=common.choice(Purpose))
@click.option("--state", type=common.choice(PublishState))
@common.search_option
@common.json_option
def dataset_list(c: WorkbenchClient, **filters: Any) -> list[DatasetInfo]:
    """Datasets you can see: yours, the public ones and the presets."""
    return c.datasets.list(**filters)


@dataset.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=common.choice(Purpose), required=True)
@click.option("--sub-purpose", type=common.choice(SubPurpose), required=True)
@click.option("--format", "fmt", type=common.choice(DatasetFormat), required=True)
@click.option("--split-mode", type=common.choice(SplitMode), default="ratio", show_default=True)
@click.option("--train-ratio", type=float, default=0.8, show_default=True)
@click.option("--description", default="")
@click.option("--visibility", type=common.choice(Visibility), default="private", show_default=True)
@common.friendly
def dataset_create(fmt: str, **fields: Any) -> None:
    """Create a dataset (state draft); prints its id."""
    with common.client() as c:
        click.echo(c.datasets.create(format=fmt, **fields).id)


@common.id_command(dataset, "upload", "dataset_id")
@click.argument("split", type=click.Choice(["train", "test"]))
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def dataset_upload(c: WorkbenchClient, dataset_id: int, split: str, archive: Path) -> None:
    """Upload a zip or tar(.gz) ARCHIVE as the SPLIT of a dataset, with progress."""
    size = archive.stat().st_size
    with click.progressbar(length=size, label=f"uploading {archive.name}") as bar:
        ds = c.datasets.upload(dataset_id, split, archive, progress=common.upload_progress(bar))
    info = ds.splits[split]  # type: ignore[index]
    click.echo(
        f"{split}: {info.statistics.samples} samples, {len(info.statistics.classes)} "
        f"classes, {len(info.report.warnings)} warnings"
    )


@common.id_command(dataset, "set", "dataset_id")
@click.option("--name")
@click.option("--description")
@click.option("--visibility", type=common.choice(Visibility))
@click.option("--train-ratio", type=float)
def dataset_set(c: WorkbenchClient, dataset_id: int, **changes: Any) -> None:
    """Edit a dataset's fields."""
    _print_dataset(c.datasets.update(dataset_id, **common.given(changes)))


_by_id = common.IdCommands(dataset, "dataset", "dataset_id", lambda c: c.datasets, _print_dataset)
_by_id.show("One dataset with its splits, validation reports and statistics, as JSON.")
_by_id.action("publish", "Put a dataset online so tasks and workspaces can use it.")
_by_id.action(
    "offline", "Take a dataset offline: new tasks and workspaces no longer see it.", "take_offline"
)
_by_id.delete(
    "Delete the dataset and its files?",
    "Delete a dataset no task or workspace uses, with its files.",
)


@common.id_command(dataset, "samples", "dataset_id", "A page of a split's samples: label and file.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train")
@click.option("--offset", type=int, default=0)
@click.option("--limit", type=int, default=10)
def dataset_samples(
    c: WorkbenchClient, dataset_id: int, split: str, offset: int, limit: int
) -> None:
    page = c.datasets.samples(dataset_id, split, offset, limit)
    click.echo(f"{page.total} samples in {split}")
    for s in page.samples:
        click.echo(f"  {s.label or '-':<16} {s.path}")
