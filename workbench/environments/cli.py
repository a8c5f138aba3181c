"""``python -m workbench.environments``: list the preset environments and build their images.

The ``envs`` group can also be added to another click command (``main.add_command(envs)``).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from workbench.clitools import CLIError
from workbench.environments.builder import DEFAULT_BASE_IMAGE, EnvBuilder, source_checkout
from workbench.environments.definition import list_definitions, load_definition
from workbench.errors import WorkbenchError


def default_root() -> Path:
    checkout = source_checkout()
    return checkout / "envs" if checkout else Path("envs")


ENVS_OPTION = click.option(
    "--envs",
    "root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=default_root,
    envvar="WORKBENCH_ENVS_DIR",
    show_default="envs/ of the source checkout",
    help="The folder of environment definitions ($WORKBENCH_ENVS_DIR).",
)


@click.group()
def envs() -> None:
    """Preset base environments (envs/<name>/env.toml) and their images."""


@envs.command("list")
@ENVS_OPTION
def list_command(root: Path) -> None:
    """The definitions: name, framework, version, device, description."""
    try:
        for d in list_definitions(root):
            click.echo(
                f"{d.name:<12} {d.framework:<11} {d.framework_version:<8} {d.device:<4} "
                f"{d.description}"
            )
    except WorkbenchError as exc:
        raise CLIError(exc) from exc


@envs.command()
@click.argument("name")
@ENVS_OPTION
@click.option("--tag", help="The image to make.  [default: workbench/env-NAME:latest]")
@click.option(
    "--wheels",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="WORKBENCH_ENV_WHEELS",
    help="A folder of wheels pip takes first (--find-links); required for packages a "
    "definition takes from local wheels (torch), which are never downloaded "
    "($WORKBENCH_ENV_WHEELS).",
)
@click.option(
    "--extra-ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="WORKBENCH_EXTRA_CA_BUNDLE",
    help="PEM certificates the image trusts besides the system's, e.g. a TLS-inspecting "
    "proxy's CA ($WORKBENCH_EXTRA_CA_BUNDLE).",
)
@click.option(
    "--pip-index-url",
    envvar="WORKBENCH_PIP_INDEX_URL",
    help="The package index pip uses during the build ($WORKBENCH_PIP_INDEX_URL; default PyPI).",
)
@click.option(
    "--base-image",
    default=DEFAULT_BASE_IMAGE,
    show_default=True,
    help="The local image to build FROM (scripts/base-image makes it).",
)
@click.option(
    "--workbench-wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A built Workbench wheel.  [default: built from the source checkout]",
)
@click.option("--force", is_flag=True, help="Build even if the image is up to date.")
def build(
    name: str,
    root: Path,
    tag: str | None,
    wheels: Path | None,
    extra_ca_bundle: Path | None,
    pip_index_url: str | None,
    base_image: str,
    workbench_wheel: Path | None,
    force: bool,
) -> None:
    """Build the image of the environment NAME on the Docker Engine."""
    from workbench.backends.docker import DockerBackend

    started = time.monotonic()
    try:
        definition = load_definition(root, name)
        builder = EnvBuilder(
            DockerBackend.from_env(),
            base_image=base_image,
            extra_ca_bundle=extra_ca_bundle,
            wheels_dir=wheels,
            pip_index_url=pip_index_url,
            workbench_wheel=workbench_wheel,
        )
        for line in builder.build(definition, tag or f"workbench/env-{name}:latest", force=force):
            click.echo(line)
    except WorkbenchError as exc:
        raise CLIError(exc) from exc
    click.echo(f"done in {time.monotonic() - started:.0f} s")
