"""The ``workbench`` command.

Administration (``db``, ``user``, ``token``) works on the registry directly, like
``jupyterhub`` does; everything else goes through the REST API with the client.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client import WorkbenchClient
from workbench.clitools import friendly
from workbench.config import Settings, default_owner
from workbench.datasets.schemas import DatasetInfo
from workbench.enums import (
    AlgorithmState,
    DatasetFormat,
    ImageKind,
    Purpose,
    Role,
    SplitMode,
    SubPurpose,
    TaskState,
    Visibility,
)
from workbench.environments.cli import envs
from workbench.environments.schemas import EnvironmentInfo
from workbench.services import Workbench
from workbench.training.schemas import TaskInfo
from workbench.workspaces.schemas import WorkspaceInfo


@contextmanager
def local_workbench(upgrade: bool = False) -> Iterator[Workbench]:
    wb = Workbench.from_settings(Settings.from_env())
    try:
        if upgrade:
            wb.registry.upgrade()
        wb.registry.check_schema()
        yield wb
    finally:
        wb.close()


def client() -> WorkbenchClient:
    return WorkbenchClient.from_env()


def choice(enum: type) -> click.Choice:
    return click.Choice([m.value for m in enum])


@click.group()
@click.version_option(package_name="workbench")
def main() -> None:
    """Workbench: datasets, workspaces, algorithms, training and serving from JupyterLab."""


main.add_command(envs)


# --- db -----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The registry's schema ($WORKBENCH_DB_URL, default SQLite in $WORKBENCH_HOME)."""


@db.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply all migrations (safe to run again)."""
    with local_workbench(upgrade=True) as wb:
        click.echo(
            f"registry {wb.registry.engine.url!r} at revision {wb.registry.current_revision()}"
        )


@db.command("current")
@friendly
def db_current() -> None:
    """Show the schema revision of the registry and the one this version needs."""
    wb = Workbench.from_settings(Settings.from_env())
    try:
        click.echo(f"current {wb.registry.current_revision()} head {wb.registry.head_revision()}")
    finally:
        wb.close()


# --- users and tokens ---------------------------------------------------------------------


@main.group()
def user() -> None:
    """Users of this registry."""


@user.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option("--display-name", default="")
@friendly
def user_add(username: str, admin: bool, display_name: str) -> None:
    """Add a user and print their first API token (shown once)."""
    with local_workbench() as wb:
        info = wb.users.add_user_with_token(
            username, role=Role.ADMIN if admin else Role.MEMBER, display_name=display_name
        )
    click.echo(f"added {info.username} ({info.role}); token (shown once): {info.token}")


@user.command("list")
@friendly
def user_list() -> None:
    with local_workbench() as wb:
        for u in wb.users.list_users():
            click.echo(f"{u.id:>4}  {u.username:<24} {u.role}")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="A label to recognise the token by.")
@click.option("--days", type=int, default=None, help="Expire after this many days.")
@friendly
def token_create(username: str, name: str, days: int | None) -> None:
    """Create a token for USERNAME (registry access needed) and print it once."""
    from datetime import timedelta

    with local_workbench() as wb:
        actor = wb.users.find(username)
        if actor is None:
            raise click.UsageError(f"No user {username!r}; add one with `workbench user add`.")
        new = wb.users.create_token(
            actor.id, name, expires_in=timedelta(days=days) if days else None
        )
    click.echo(new.secret)


@main.group()
def team() -> None:
    """Teams (through the REST API)."""


@team.command("create")
@click.argument("name")
@click.option("--description", default="")
@friendly
def team_create(name: str, description: str) -> None:
    """Create a team; you become its admin."""
    with client() as c:
        t = c.create_team(name, description)
    click.echo(f"team {t.id} {t.name}")


@team.command("add")
@click.argument("team_id", type=int)
@click.argument("username")
@friendly
def team_add(team_id: int, username: str) -> None:
    """Add USERNAME to a team you administer."""
    with client() as c:
        t = c.add_team_member(team_id, username)
    click.echo(", ".join(f"{u} ({r})" for u, r in t.members.items()))


@team.command("list")
@friendly
def team_list() -> None:
    """The teams you belong to."""
    with client() as c:
        for t in c.teams():
            click.echo(f"{t.id:>4}  {t.name:<24} {', '.join(t.members)}")


@main.command()
@click.argument("url")
@click.option("--token", "secret", required=True, help="A Workbench API token.")
@friendly
def login(url: str, secret: str) -> None:
    """Check URL and TOKEN, then save them for the CLI and notebooks."""
    me = WorkbenchClient(url, secret).me()
    save_credentials(Settings.from_env(), url, secret)
    click.echo(f"logged in to {url} as {me.username}")


def save_credentials(settings: Settings, url: str, secret: str) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.credentials_file
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": secret}, f)
    os.replace(tmp, path)


# --- lab ----------------------------------------------------------------------------------


@main.command()
@click.option("--port", default=8888, show_default=True)
@click.option("--ip", default="127.0.0.1", show_default=True)
@click.option(
    "--root-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder JupyterLab shows (default: the current folder).",
)
@click.option("--open-browser/--no-browser", default=False, show_default=True)
@friendly
def lab(port: int, ip: str, root_dir: Path | None, open_browser: bool) -> None:
    """Upgrade the registry and start JupyterLab with the Workbench; prints the URL."""
    settings = Settings.from_env()
    with local_workbench(upgrade=True) as wb:
        owner = wb.users.ensure_owner(default_owner())
        cli_token = wb.users.replace_token(owner.id, "workbench lab")
    jupyter_token = secrets.token_urlsafe(24)
    url = f"http://{ip}:{port}/"
    save_credentials(settings, url, cli_token.secret)
    click.echo(f"Workbench registry: {settings.db_url}")
    click.echo(f"Workbench home:     {settings.home}")
    click.echo(f"Open JupyterLab:    {url}lab?token={jupyter_token}", err=False)
    sys.stdout.flush()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.port={port}",
        f"--ServerApp.ip={ip}",
        f"--IdentityProvider.token={jupyter_token}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.open_browser={open_browser}",
        "--ServerApp.jpserver_extensions=workbench_ext=True",
        "--ServerApp.identity_provider_class=workbench_ext.identity.WorkbenchIdentityProvider",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    if root_dir:
        cmd.append(f"--ServerApp.root_dir={root_dir}")
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home)}
    raise SystemExit(subprocess.call(cmd, env=env))


# --- datasets -----------------------------------------------------------------------------


@main.group()
def dataset() -> None:
    """Datasets (through the REST API)."""


def _print_dataset(ds: DatasetInfo) -> None:
    click.echo(
        f"{ds.id:>4}  {ds.name:<28} {ds.purpose}/{ds.sub_purpose:<16} {ds.format:<12} "
        f"{ds.state:<8} {ds.visibility:<8} {ds.owner}"
    )
    for split, info in ds.splits.items():
        st = info.statistics
        click.echo(
            f"      {split}: {info.archive_name} {st.samples} samples, {len(st.classes)} classes"
        )


@dataset.command("list")
@click.option("--mine", is_flag=True, help="Only datasets I own.")
@click.option("--purpose", type=choice(Purpose))
@click.option("--state", type=click.Choice(["draft", "online", "offline"]))
@click.option("--search", "q", help="Text to find in names and descriptions.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def dataset_list(
    mine: bool, purpose: str | None, state: str | None, q: str | None, as_json: bool
) -> None:
    with client() as c:
        found = c.datasets.list(mine=mine or None, purpose=purpose, state=state, q=q)
    if as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in found], indent=1))
        return
    for ds in found:
        _print_dataset(ds)


@dataset.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=choice(Purpose), required=True)
@click.option("--sub-purpose", type=choice(SubPurpose), required=True)
@click.option("--format", "fmt", type=choice(DatasetFormat), required=True)
@click.option("--split-mode", type=choice(SplitMode), default="ratio", show_default=True)
@click.option("--train-ratio", type=float, default=0.8, show_default=True)
@click.option("--description", default="")
@click.option("--visibility", type=choice(Visibility), default="private", show_default=True)
@friendly
def dataset_create(
    name: str,
    purpose: str,
    sub_purpose: str,
    fmt: str,
    split_mode: str,
    train_ratio: float,
    description: str,
    visibility: str,
) -> None:
    """Create a dataset (state draft); prints its id."""
    with client() as c:
        ds = c.datasets.create(
            name=name,
            purpose=purpose,
            sub_purpose=sub_purpose,
            format=fmt,
            split_mode=split_mode,
            train_ratio=train_ratio,
            description=description,
            visibility=visibility,
        )
    click.echo(ds.id)


@dataset.command("show")
@click.argument("dataset_id", type=int)
@friendly
def dataset_show(dataset_id: int) -> None:
    with client() as c:
        click.echo(c.datasets.get(dataset_id).model_dump_json(indent=1))


@dataset.command("upload")
@click.argument("dataset_id", type=int)
@click.argument("split", type=click.Choice(["train", "test"]))
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def dataset_upload(dataset_id: int, split: str, archive: Path) -> None:
    """Upload a zip or tar(.gz) ARCHIVE as the SPLIT of a dataset, with progress."""
    size = archive.stat().st_size
    with client() as c, click.progressbar(length=size, label=f"uploading {archive.name}") as bar:
        seen = [0]

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - seen[0])
            seen[0] = sent

        ds = c.datasets.upload(dataset_id, split, archive, progress=progress)
    info = ds.splits[split]  # type: ignore[index]
    click.echo(
        f"{split}: {info.statistics.samples} samples, {len(info.statistics.classes)} "
        f"classes, {len(info.report.warnings)} warnings"
    )


@dataset.command("set")
@click.argument("dataset_id", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--visibility", type=choice(Visibility))
@click.option("--train-ratio", type=float)
@friendly
def dataset_set(dataset_id: int, **changes: Any) -> None:
    """Edit a dataset's fields."""
    with client() as c:
        _print_dataset(
            c.datasets.update(dataset_id, **{k: v for k, v in changes.items() if v is not None})
        )


@dataset.command("publish")
@click.argument("dataset_id", type=int)
@friendly
def dataset_publish(dataset_id: int) -> None:
    """Put a dataset online so tasks and workspaces can use it."""
    with client() as c:
        _print_dataset(c.datasets.publish(dataset_id))


@dataset.command("offline")
@click.argument("dataset_id", type=int)
@friendly
def dataset_offline(dataset_id: int) -> None:
    with client() as c:
        _print_dataset(c.datasets.take_offline(dataset_id))


@dataset.command("delete")
@click.argument("dataset_id", type=int)
@click.confirmation_option(prompt="Delete the dataset and its files?")
@friendly
def dataset_delete(dataset_id: int) -> None:
    with client() as c:
        c.datasets.delete(dataset_id)
    click.echo(f"deleted dataset {dataset_id}")


@dataset.command("samples")
@click.argument("dataset_id", type=int)
@click.option("--split", type=click.Choice(["train", "test"]), default="train")
@click.option("--offset", type=int, default=0)
@click.option("--limit", type=int, default=10)
@friendly
def dataset_samples(dataset_id: int, split: str, offset: int, limit: int) -> None:
    with client() as c:
        page = c.datasets.samples(dataset_id, split, offset, limit)
    click.echo(f"{page.total} samples in {split}")
    for s in page.samples:
        click.echo(f"  {s.label or '-':<16} {s.path}")


# --- workspaces ---------------------------------------------------------------------------


@main.group()
def workspace() -> None:
    """Container workspaces (through the REST API)."""


def _print_workspace(ws: WorkspaceInfo) -> None:
    members = f" members: {', '.join(ws.members)}" if ws.members else ""
    click.echo(
        f"{ws.id:>4}  {ws.name:<24} {ws.purpose}/{ws.sub_purpose:<16} env {ws.environment_id:<3} "
        f"{ws.state:<8} {ws.owner}{members}"
    )
    if ws.state_reason:
        click.echo(f"      {ws.state_reason}")


@workspace.command("list")
@friendly
def workspace_list() -> None:
    """Workspaces you own or are a member of."""
    with client() as c:
        for ws in c.workspaces.list():
            _print_workspace(ws)


@workspace.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=choice(Purpose), required=True)
@click.option("--sub-purpose", type=choice(SubPurpose), required=True)
@click.option("--environment", "environment_id", type=int, required=True, help="Its id.")
@click.option("--dataset", "dataset_id", type=int, help="An online dataset's id.")
@click.option("--git", "git_url", help="Clone this repository into code/.")
@click.option("--ref", default="", help="Branch or tag to clone.")
@click.option("--scaffold", "prefix", help="Generate <prefix>-train and <prefix>-api.")
@click.option("--api", "api_names", multiple=True, help="API names of the scaffold.")
@click.option("--empty", is_flag=True, help="No code yet (upload a zip later).")
@click.option("--cpus", type=float, default=1.0, show_default=True)
@click.option("--memory-mb", type=int, default=2048, show_default=True)
@click.option("--gpus", type=int, default=0, show_default=True)
@friendly
def workspace_create(
    name: str,
    purpose: str,
    sub_purpose: str,
    environment_id: int,
    dataset_id: int | None,
    git_url: str | None,
    ref: str,
    prefix: str | None,
    api_names: tuple[str, ...],
    empty: bool,
    cpus: float,
    memory_mb: int,
    gpus: int,
) -> None:
    """Create a workspace; code comes from --git, --scaffold, --empty, or the sample."""
    if sum(bool(x) for x in (git_url, prefix, empty)) > 1:
        raise click.UsageError("Choose one of --git, --scaffold and --empty.")
    code: dict[str, Any] = {"kind": "sample"}
    if git_url:
        code = {"kind": "git", "url": git_url, "ref": ref}
    elif prefix:
        code = {"kind": "scaffold", "prefix": prefix, "api_names": list(api_names) or ["predict"]}
    elif empty:
        code = {"kind": "upload"}
    with client() as c:
        ws = c.workspaces.create(
            name=name,
            purpose=purpose,
            sub_purpose=sub_purpose,
            environment_id=environment_id,
            dataset_id=dataset_id,
            code=code,
            resources={"cpus": cpus, "memory_mb": memory_mb, "gpus": gpus},
        )
    click.echo(ws.id)


@workspace.command("start")
@click.argument("workspace_id", type=int)
@friendly
def workspace_start(workspace_id: int) -> None:
    with client() as c:
        _print_workspace(c.workspaces.start(workspace_id))


@workspace.command("stop")
@click.argument("workspace_id", type=int)
@friendly
def workspace_stop(workspace_id: int) -> None:
    """Stop the container; the files are kept."""
    with client() as c:
        _print_workspace(c.workspaces.stop(workspace_id))


@workspace.command("delete")
@click.argument("workspace_id", type=int)
@click.confirmation_option(prompt="Delete the workspace, its container and its files?")
@friendly
def workspace_delete(workspace_id: int) -> None:
    with client() as c:
        c.workspaces.delete(workspace_id)
    click.echo(f"deleted workspace {workspace_id}")


@workspace.command("member")
@click.argument("workspace_id", type=int)
@click.argument("username")
@click.option("--remove", is_flag=True, help="Remove instead of add.")
@friendly
def workspace_member(workspace_id: int, username: str, remove: bool) -> None:
    """Add a member of one of your teams to a workspace (or --remove them)."""
    with client() as c:
        api = c.workspaces.remove_member if remove else c.workspaces.add_member
        _print_workspace(api(workspace_id, username))


@workspace.command("download")
@click.argument("workspace_id", type=int)
@click.argument("folder", type=click.Choice(["code", "model"]))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: workspace-<id>-<folder>.zip here.",
)
@friendly
def workspace_download(workspace_id: int, folder: str, output: Path | None) -> None:
    """Download the workspace's code/ or model/ as a zip."""
    dest = output or Path(f"workspace-{workspace_id}-{folder}.zip")
    with client() as c:
        c.workspaces.download(workspace_id, folder, dest)
    click.echo(f"saved {dest}")


@workspace.command("upload-code")
@click.argument("workspace_id", type=int)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def workspace_upload_code(workspace_id: int, archive: Path) -> None:
    """Replace the workspace's code/ with a zip or tar(.gz)."""
    with client() as c:
        _print_workspace(c.workspaces.upload_code(workspace_id, archive))


# --- environments -------------------------------------------------------------------------


@main.group()
def environment() -> None:
    """Base environments of workspaces and builds (through the REST API); `workbench envs`
    builds the preset images on this machine."""


def _print_environment(env: EnvironmentInfo) -> None:
    version = f"{env.framework} {env.framework_version}".strip()
    click.echo(
        f"{env.id:>4}  {env.name:<24} {version:<20} {env.device:<4} {env.state:<9} "
        f"{env.visibility:<8} {env.owner:<10} {env.image_ref}"
    )
    if env.state_reason:
        click.echo(f"      {env.state_reason.splitlines()[0]}")


@environment.command("list")
@click.option("--mine", is_flag=True, help="Only environments I own.")
@click.option("--visibility", type=choice(Visibility), help="private, public or preset.")
@click.option("--framework", help="python, pytorch, tensorflow, keras, onnx...")
@click.option("--json", "as_json", is_flag=True)
@friendly
def environment_list(
    mine: bool, visibility: str | None, framework: str | None, as_json: bool
) -> None:
    with client() as c:
        found = c.environments.list(mine=mine or None, visibility=visibility, framework=framework)
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in found], indent=1))
        return
    for env in found:
        _print_environment(env)


@environment.command("create")
@click.option("--name", required=True)
@click.option("--definition", help="A preset definition of envs/ to build from (e.g. python).")
@click.option("--framework", help="Default: the definition's.")
@click.option("--framework-version", help="Default: the definition's.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Default: the definition's.")
@click.option("--description", default="")
@click.option("--visibility", type=choice(Visibility), default="private", show_default=True)
@friendly
def environment_create(**fields: Any) -> None:
    """Create an environment (state draft); prints its id."""
    with client() as c:
        env = c.environments.create(**{k: v for k, v in fields.items() if v is not None})
    click.echo(env.id)


@environment.command("show")
@click.argument("env_id", type=int)
@friendly
def environment_show(env_id: int) -> None:
    with client() as c:
        click.echo(c.environments.get(env_id).model_dump_json(indent=1))


@environment.command("set")
@click.argument("env_id", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--framework")
@click.option("--framework-version")
@click.option("--device", type=click.Choice(["cpu", "gpu"]))
@click.option("--definition", help="'' to detach it from its definition.")
@click.option("--visibility", type=choice(Visibility))
@friendly
def environment_set(env_id: int, **changes: Any) -> None:
    """Edit an environment's fields."""
    with client() as c:
        _print_environment(
            c.environments.update(env_id, **{k: v for k, v in changes.items() if v is not None})
        )


@environment.command("delete")
@click.argument("env_id", type=int)
@click.confirmation_option(prompt="Delete the environment?")
@friendly
def environment_delete(env_id: int) -> None:
    with client() as c:
        c.environments.delete(env_id)
    click.echo(f"deleted environment {env_id}")


@environment.command("build")
@click.argument("env_id", type=int)
@click.option("--detach", is_flag=True, help="Start the build and return at once.")
@friendly
def environment_build(env_id: int, detach: bool) -> None:
    """Build the image from the environment's definition, showing its log."""
    with client() as c:
        env = c.environments.build(env_id)
        if detach:
            _print_environment(env)
            return
        for line in c.environments.follow(env_id):
            click.echo(line)
        env = c.environments.get(env_id)
    _print_environment(env)
    if env.state != "ready":
        raise click.ClickException(f"the build failed: {env.state_reason}")


@environment.command("log")
@click.argument("env_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep reading while it builds.")
@friendly
def environment_log(env_id: int, follow: bool) -> None:
    """The log of the last build, upload or pull."""
    with client() as c:
        if follow:
            for line in c.environments.follow(env_id):
                click.echo(line)
        else:
            click.echo(c.environments.log(env_id).text, nl=False)


@environment.command("upload")
@click.argument("env_id", type=int)
@click.argument("tar", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def environment_upload(env_id: int, tar: Path) -> None:
    """Upload a `docker save` TAR as the environment's image (checked, then loaded)."""
    with client() as c, click.progressbar(length=tar.stat().st_size, label=tar.name) as bar:
        seen = [0]

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - seen[0])
            seen[0] = sent

        env = c.environments.upload_image(env_id, tar, progress=progress)
    _print_environment(env)


@environment.command("pull")
@click.argument("env_id", type=int)
@click.argument("reference")
@friendly
def environment_pull(env_id: int, reference: str) -> None:
    """`docker pull` REFERENCE as the environment's image (Docker Engine servers only)."""
    with client() as c:
        _print_environment(c.environments.pull(env_id, reference))


@environment.command("sync-presets")
@friendly
def environment_sync_presets() -> None:
    """Register one preset environment per envs/ definition (admins; safe to run again)."""
    with client() as c:
        for env in c.environments.sync_presets():
            _print_environment(env)


@workspace.command("build")
@click.argument("workspace_id", type=int)
@click.argument("project")
@click.option("--kind", type=click.Choice(["train", "predict"]), required=True)
@click.option("--name", required=True, help="The tar is docker_image/<kind>-<name>.tar.")
@friendly
def workspace_build(workspace_id: int, project: str, kind: str, name: str) -> None:
    """Build code/PROJECT/Dockerfile into docker_image/<kind>-<name>.tar, showing its log."""
    with client() as c:
        for line in c.workspaces.build(workspace_id, project, kind, name):
            click.echo(line)


@workspace.command("images")
@click.argument("workspace_id", type=int)
@friendly
def workspace_images(workspace_id: int) -> None:
    """The docker save tars in the workspace's docker_image/."""
    with client() as c:
        for tar in c.workspaces.images(workspace_id):
            click.echo(f"{tar.size / 1e6:>9.1f} MB  {tar.modified_at:%Y-%m-%d %H:%M}  {tar.path}")


# --- algorithms ---------------------------------------------------------------------------


@main.group()
def algorithm() -> None:
    """The algorithm library: a training and an inference image with how to run them."""


def _print_algorithm(algo: AlgorithmInfo) -> None:
    click.echo(
        f"{algo.id:>4}  {algo.name:<24} {algo.purpose}/{algo.sub_purpose:<22} {algo.state:<8} "
        f"{algo.visibility:<8} {algo.owner:<10} train {algo.train.state:<8} "
        f"predict {algo.predict.state}"
    )
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


def _upload_progress(bar: Any) -> Callable[[int, int], None]:
    seen = [0]

    def progress(sent: int, _total: int) -> None:
        bar.update(sent - seen[0])
        seen[0] = sent

    return progress


@algorithm.command("list")
@click.option("--visibility", type=click.Choice(["mine", *(v.value for v in Visibility)]))
@click.option("--purpose", type=choice(Purpose))
@click.option("--sub-purpose", type=choice(SubPurpose))
@click.option("--state", type=choice(AlgorithmState))
@click.option("--search", "q", help="Text to find in names and descriptions.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def algorithm_list(as_json: bool, **filters: Any) -> None:
    """Algorithms you can see: yours, public and preset."""
    with client() as c:
        found = c.algorithms.list(**filters)
    if as_json:
        click.echo(json.dumps([a.model_dump(mode="json") for a in found], indent=1))
        return
    for algo in found:
        _print_algorithm(algo)


@algorithm.command("show")
@click.argument("algorithm_id", type=int)
@friendly
def algorithm_show(algorithm_id: int) -> None:
    """One algorithm with both images' settings, state and config, as JSON."""
    with client() as c:
        click.echo(c.algorithms.get(algorithm_id).model_dump_json(indent=1))


@algorithm.command("create")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--visibility", type=choice(Visibility), help="Default: the file's, else private.")
@friendly
def algorithm_create(spec: Path, visibility: str | None) -> None:
    """Register an algorithm from a JSON file (name, description, purpose, sub_purpose,
    train and predict settings: the shape of examples/algorithms/*/algorithm.json); prints
    its id."""
    fields = _read_json(spec)
    if visibility:
        fields["visibility"] = visibility
    with client() as c:
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
@click.option("--visibility", type=choice(Visibility))
@friendly
def algorithm_set(algorithm_id: int, spec: Path | None, **changes: Any) -> None:
    """Edit an algorithm (run settings only while it is not online)."""
    fields = _read_json(spec) if spec else {}
    fields.update({k: v for k, v in changes.items() if v is not None})
    with client() as c:
        _print_algorithm(c.algorithms.update(algorithm_id, **fields))


@algorithm.command("upload-image")
@click.argument("algorithm_id", type=int)
@click.argument("kind", type=choice(ImageKind))
@click.argument("tar", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def algorithm_upload_image(algorithm_id: int, kind: str, tar: Path) -> None:
    """Upload a `docker save` TAR as the train or predict image (checked, then loaded)."""
    with client() as c, click.progressbar(length=tar.stat().st_size, label=tar.name) as bar:
        algo = c.algorithms.upload_image(algorithm_id, kind, tar, progress=_upload_progress(bar))
    _print_algorithm(algo)


@algorithm.command("pull")
@click.argument("algorithm_id", type=int)
@click.argument("kind", type=choice(ImageKind))
@click.argument("reference")
@friendly
def algorithm_pull(algorithm_id: int, kind: str, reference: str) -> None:
    """`docker pull` REFERENCE as the train or predict image (Docker Engine servers only)."""
    with client() as c:
        _print_algorithm(c.algorithms.pull_image(algorithm_id, kind, reference))


@algorithm.command("check")
@click.argument("workspace_id", type=int)
@click.argument("filename")
@friendly
def algorithm_check(workspace_id: int, filename: str) -> None:
    """Check docker_image/FILENAME of a workspace as publishing it would (loads nothing)."""
    with client() as c:
        report = c.workspaces.inspect_image(workspace_id, filename)
    click.echo(report.model_dump_json(indent=1))
    if not report.ok:
        raise click.ClickException("; ".join(report.problems))


@algorithm.command("from-workspace")
@click.argument("algorithm_id", type=int)
@click.argument("kind", type=choice(ImageKind))
@click.argument("workspace_id", type=int)
@click.argument("filename")
@friendly
def algorithm_from_workspace(
    algorithm_id: int, kind: str, workspace_id: int, filename: str
) -> None:
    """Publish docker_image/FILENAME (<kind>-<name>.tar) of a workspace as the image."""
    with client() as c:
        _print_algorithm(
            c.algorithms.image_from_workspace(algorithm_id, kind, workspace_id, filename)
        )


@algorithm.command("publish")
@click.argument("algorithm_id", type=int)
@friendly
def algorithm_publish(algorithm_id: int) -> None:
    """Put the algorithm online: training tasks may use it."""
    with client() as c:
        _print_algorithm(c.algorithms.publish(algorithm_id))


@algorithm.command("offline")
@click.argument("algorithm_id", type=int)
@friendly
def algorithm_offline(algorithm_id: int) -> None:
    """Take the algorithm offline: new training tasks refuse it, old ones keep their history."""
    with client() as c:
        _print_algorithm(c.algorithms.take_offline(algorithm_id))


@algorithm.command("delete")
@click.argument("algorithm_id", type=int)
@click.confirmation_option(prompt="Delete the algorithm and its images?")
@friendly
def algorithm_delete(algorithm_id: int) -> None:
    """Delete an algorithm no training task or model version uses, and its images."""
    with client() as c:
        c.algorithms.delete(algorithm_id)
    click.echo(f"deleted algorithm {algorithm_id}")


# --- training tasks -----------------------------------------------------------------------


@main.group()
def task() -> None:
    """Training tasks: an algorithm trained on a dataset (through the REST API)."""


def _print_task(t: TaskInfo) -> None:
    click.echo(
        f"{t.id:>4}  {t.name:<24} {t.purpose}/{t.sub_purpose:<16} algorithm {t.algorithm_id:<3} "
        f"dataset {t.dataset_id:<3} {t.state:<9} {t.owner}"
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


@task.command("list")
@click.option("--mine", is_flag=True, help="Only tasks I own.")
@click.option("--state", type=choice(TaskState))
@click.option("--purpose", type=choice(Purpose))
@click.option("--search", "q", help="Text to find in names and descriptions.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def task_list(
    mine: bool, state: str | None, purpose: str | None, q: str | None, as_json: bool
) -> None:
    """Training tasks I can see (mine and public ones), newest first."""
    with client() as c:
        found = c.training.list(mine=mine or None, state=state, purpose=purpose, q=q)
    if as_json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in found], indent=1))
        return
    for t in found:
        _print_task(t)


@task.command("show")
@click.argument("task_id", type=int)
@friendly
def task_show(task_id: int) -> None:
    """Everything about a task, its evaluation included, as JSON."""
    with client() as c:
        click.echo(c.training.get(task_id).model_dump_json(indent=1))


@task.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=choice(Purpose), required=True)
@click.option("--sub-purpose", type=choice(SubPurpose), required=True)
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
@click.option("--visibility", type=choice(Visibility), default="private", show_default=True)
@click.option("--start", is_flag=True, help="Queue it at once instead of saving a draft.")
@friendly
def task_create(params: tuple[str, ...], **fields: Any) -> None:
    """Create a training task (a draft, or queued with --start); prints its id."""
    body = {k: v for k, v in fields.items() if v is not None}
    with client() as c:
        t = c.training.create(**body, parameters=_parameters(params))
    click.echo(t.id)


@task.command("set")
@click.argument("task_id", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--visibility", type=choice(Visibility))
@click.option("--train-ratio", type=float)
@click.option("--param", "params", multiple=True, help="NAME=VALUE; replaces all of them.")
@click.option("--cpus", type=float)
@click.option("--memory-mb", type=int)
@click.option("--gpus", type=int)
@friendly
def task_set(task_id: int, params: tuple[str, ...], **changes: Any) -> None:
    """Edit a draft or a finished task."""
    body = {k: v for k, v in changes.items() if v is not None}
    if params:
        body["parameters"] = _parameters(params)
    with client() as c:
        _print_task(c.training.update(task_id, **body))


@task.command("start")
@click.argument("task_id", type=int)
@friendly
def task_start(task_id: int) -> None:
    """Queue a draft's first run."""
    with client() as c:
        _print_task(c.training.start(task_id))


@task.command("stop")
@click.argument("task_id", type=int)
@friendly
def task_stop(task_id: int) -> None:
    """Stop a queued or running task."""
    with client() as c:
        _print_task(c.training.stop(task_id))


@task.command("retry")
@click.argument("task_id", type=int)
@friendly
def task_retry(task_id: int) -> None:
    """Queue a new run of a finished task."""
    with client() as c:
        _print_task(c.training.retry(task_id))


@task.command("delete")
@click.argument("task_id", type=int)
@click.confirmation_option(prompt="Delete the task, its runs, logs and metrics?")
@friendly
def task_delete(task_id: int) -> None:
    """Delete a task (its model versions stay)."""
    with client() as c:
        c.training.delete(task_id)
    click.echo(f"deleted training task {task_id}")


@task.command("logs")
@click.argument("task_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep reading while it is queued or runs.")
@click.option("--run", "job_id", type=int, help="An earlier run's id (see `task runs`).")
@friendly
def task_logs(task_id: int, follow: bool, job_id: int | None) -> None:
    """The log of the task's current run."""
    with client() as c:
        if follow and job_id is None:
            for line in c.training.follow(task_id):
                click.echo(line)
            return
        offset, text = 0, None
        while text != "":
            page = c.training.log(task_id, offset, job_id)
            click.echo(page.text, nl=False)
            offset, text = page.next_offset, page.text


@task.command("runs")
@click.argument("task_id", type=int)
@friendly
def task_runs(task_id: int) -> None:
    """Every run of the task."""
    with client() as c:
        for run in c.training.runs(task_id):
            code = "" if run.exit_code is None else f"exit {run.exit_code}"
            click.echo(
                f"{run.id:>5}  {run.created_at:%Y-%m-%d %H:%M}  {run.state:<9} {code:<8} "
                f"{run.message.splitlines()[0] if run.message else ''}"
            )


@task.command("metrics")
@click.argument("task_id", type=int)
@click.option("--run", "job_id", type=int, help="An earlier run's id (see `task runs`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@friendly
def task_metrics(task_id: int, job_id: int | None, as_json: bool) -> None:
    """The metrics the run wrote (one line of its metrics file each)."""
    points = []
    with client() as c:
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


if __name__ == "__main__":
    main()
