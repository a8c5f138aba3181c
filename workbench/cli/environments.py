"""``workbench environment``: base environments of workspaces and builds (through the REST
API), and the preset definitions of envs/ built on this machine (``definitions``,
``build-local``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.enums import Visibility
from workbench.environments.schemas import EnvironmentInfo

environment = click.Group(
    "environment",
    help="Base environments of workspaces and builds (through the REST API); `definitions` "
    "and `build-local` work on this machine's envs/ folder and Docker Engine.",
)


def _print_environment(env: EnvironmentInfo) -> None:
    version = f"{env.framework} {env.framework_version}".strip()
    click.echo(
        f"{env.id:>4}  {env.name:<24} {version:<20} {env.device:<4} {env.state:<9} "
        f"{env.visibility:<8} {env.owner:<10} {env.image_ref}"
    )
    if env.state_reason:
        click.echo(f"      {env.state_reason.splitlines()[0]}")


@common.list_command(environment, "list", _print_environment)
@common.mine_option
@click.option("--visibility", type=common.choice(Visibility), help="private, public or preset.")
@click.option("--framework", help="python, pytorch, tensorflow, keras, onnx...")
@common.json_option
def environment_list(c: WorkbenchClient, **filters: Any) -> list[EnvironmentInfo]:
    """Environments you can see: yours, the public ones and the presets."""
    return c.environments.list(**filters)


@environment.command("create")
@click.option("--name", required=True)
@click.option("--definition", help="A preset definition of envs/ to build from (e.g. python).")
@click.option("--framework", help="Default: the definition's.")
@click.option("--framework-version", help="Default: the definition's.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Default: the definition's.")
@click.option("--description", default="")
@click.option("--visibility", type=common.choice(Visibility), default="private", show_default=True)
@common.friendly
def environment_create(**fields: Any) -> None:
    """Create an environment (state draft); prints its id."""
    with common.client() as c:
        env = c.environments.create(**common.given(fields))
    click.echo(env.id)


@common.id_command(environment, "set", "env_id")
@click.option("--name")
@click.option("--description")
@click.option("--framework")
@click.option("--framework-version")
@click.option("--device", type=click.Choice(["cpu", "gpu"]))
@click.option("--definition", help="'' to detach it from its definition.")
@click.option("--visibility", type=common.choice(Visibility))
def environment_set(c: WorkbenchClient, env_id: int, **changes: Any) -> None:
    """Edit an environment's fields."""
    _print_environment(c.environments.update(env_id, **common.given(changes)))


_by_id = common.IdCommands(
    environment, "environment", "env_id", lambda c: c.environments, _print_environment
)
_by_id.show("One environment: framework, device, image and build state, as JSON.")
_by_id.delete(
    "Delete the environment?",
    "Delete an environment no workspace, algorithm or model version uses, with the image "
    "built for it.",
)


@common.id_command(environment, "build", "env_id")
@common.detach_option
def environment_build(c: WorkbenchClient, env_id: int, detach: bool) -> None:
    """Build the image from the environment's definition, showing its log."""
    env = c.environments.build(env_id)
    if detach:
        _print_environment(env)
        return
    for line in c.jobs.follow(env.job_id or 0, interval=0.5):
        click.echo(line)
    env = c.environments.get(env_id)
    _print_environment(env)
    if env.state != "ready":
        raise click.ClickException(f"the build failed: {env.state_reason}")


@common.id_command(environment, "log", "env_id")
@common.follow_option
def environment_log(c: WorkbenchClient, env_id: int, follow: bool) -> None:
    """The log of the last build, upload or pull (its job's)."""
    common.show_log(c, c.environments.get(env_id).job_id, follow)


@common.id_command(environment, "upload", "env_id")
@click.argument("tar", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.detach_option
def environment_upload(c: WorkbenchClient, env_id: int, tar: Path, detach: bool) -> None:
    """Upload a `docker save` TAR as the environment's image (checked, then loaded: a job
    whose log is shown)."""
    with click.progressbar(length=tar.stat().st_size, label=tar.name) as bar:
        env = c.environments.upload_image(
            env_id, tar, progress=common.upload_progress(bar), wait=False
        )
    common.follow_job(c, env.job_id, detach=detach)
    _print_environment(c.environments.get(env_id))


@common.id_command(environment, "pull", "env_id")
@click.argument("reference")
@common.detach_option
def environment_pull(c: WorkbenchClient, env_id: int, reference: str, detach: bool) -> None:
    """`docker pull` REFERENCE as the environment's image (Docker Engine servers only)."""
    env = c.environments.pull(env_id, reference, wait=False)
    common.follow_job(c, env.job_id, detach=detach)
    _print_environment(c.environments.get(env_id))


@common.list_command(environment, "sync-presets", _print_environment)
def environment_sync_presets(c: WorkbenchClient) -> list[EnvironmentInfo]:
    """Register one preset environment per envs/ definition (admins; safe to run again)."""
    return c.environments.sync_presets()


# --- the preset definitions, built on this machine ----------------------------------------
# (their modules are the server's: imported by the commands, see common.server_imports)


def _default_root() -> Path:
    with common.server_imports():
        from workbench.environments.builder import default_root
    return default_root()


ENVS_OPTION = click.option(
    "--envs",
    "root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=_default_root,
    envvar="WORKBENCH_ENVS_DIR",
    show_default="envs/ of the source checkout",
    help="The folder of environment definitions ($WORKBENCH_ENVS_DIR).",
)


@environment.command("definitions")
@ENVS_OPTION
@common.friendly
def environment_definitions(root: Path) -> None:
    """The preset definitions (envs/<name>/env.toml): name, framework, version, device,
    description."""
    with common.server_imports():
        from workbench.environments.definition import list_definitions

    for d in list_definitions(root):
        click.echo(
            f"{d.name:<12} {d.framework:<11} {d.framework_version:<8} {d.device:<4} {d.description}"
        )


@environment.command("build-local")
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
@common.friendly
def environment_build_local(
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
    """Build the image of the preset definition NAME on this machine's Docker Engine (no
    server needed)."""
    with common.server_imports():
        from workbench.backends.docker import DockerBackend
        from workbench.environments.builder import EnvBuilder
        from workbench.environments.definition import load_definition

    started = time.monotonic()
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
    click.echo(f"done in {time.monotonic() - started:.0f} s")
