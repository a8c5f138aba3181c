"""``workbench workspace``: container workspaces and the images built in them (through the
REST API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.enums import Purpose, SubPurpose
from workbench.workspaces.schemas import WorkspaceInfo

workspace = click.Group("workspace", help="Container workspaces (through the REST API).")


def _print_workspace(ws: WorkspaceInfo) -> None:
    members = f" members: {', '.join(ws.members)}" if ws.members else ""
    invited = f" invited: {', '.join(ws.invited)}" if ws.invited else ""
    common.echo_row(
        ws, 24, 16, f"env {ws.environment_id:<3} {ws.state:<8} {ws.owner}{members}{invited}"
    )
    if ws.state_reason:
        click.echo(f"      {ws.state_reason}")


@common.list_command(workspace, "list", _print_workspace)
def workspace_list(c: WorkbenchClient) -> list[WorkspaceInfo]:
    """Workspaces you own or are a member of."""
    return c.workspaces.list()


@workspace.command("create")
@click.option("--name", required=True)
@click.option("--purpose", type=common.choice(Purpose), required=True)
@click.option("--sub-purpose", type=common.choice(SubPurpose), required=True)
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
@common.friendly
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
    with common.client() as c:
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


_by_id = common.IdCommands(
    workspace, "workspace", "workspace_id", lambda c: c.workspaces, _print_workspace
)
_by_id.action("start", "Start the workspace's container (its JupyterLab and kernels).")
_by_id.action("stop", "Stop the container; the files are kept.")
_by_id.delete(
    "Delete the workspace, its container and its files?",
    "Delete a workspace you own: its container and its files.",
)


@common.id_command(workspace, "member", "workspace_id")
@click.argument("username")
@click.option("--remove", is_flag=True, help="Remove instead of add.")
def workspace_member(c: WorkbenchClient, workspace_id: int, username: str, remove: bool) -> None:
    """Invite a member of one of your teams to a workspace (a member once they accept:
    `workbench invitation accept`), or --remove a member."""
    api = c.workspaces.remove_member if remove else c.workspaces.add_member
    _print_workspace(api(workspace_id, username))


@common.id_command(workspace, "download", "workspace_id")
@click.argument("folder", type=click.Choice(["code", "model"]))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: workspace-<id>-<folder>.zip here.",
)
def workspace_download(
    c: WorkbenchClient, workspace_id: int, folder: str, output: Path | None
) -> None:
    """Download the workspace's code/ or model/ as a zip."""
    dest = output or Path(f"workspace-{workspace_id}-{folder}.zip")
    c.workspaces.download(workspace_id, folder, dest)
    click.echo(f"saved {dest}")


@common.id_command(workspace, "upload-code", "workspace_id")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def workspace_upload_code(c: WorkbenchClient, workspace_id: int, archive: Path) -> None:
    """Replace the workspace's code/ with a zip or tar(.gz)."""
    _print_workspace(c.workspaces.upload_code(workspace_id, archive))


@common.id_command(workspace, "build", "workspace_id")
@click.argument("project")
@click.option("--kind", type=click.Choice(["train", "predict"]), required=True)
@click.option("--name", required=True, help="The tar is docker_image/<kind>-<name>.tar.")
@common.detach_option
def workspace_build(
    c: WorkbenchClient, workspace_id: int, project: str, kind: str, name: str, detach: bool
) -> None:
    """Build code/PROJECT/Dockerfile into docker_image/<kind>-<name>.tar, showing its log."""
    started = c.workspaces.build(workspace_id, project, kind, name, wait=False)
    common.follow_job(c, started.job_id, detach=detach)
    if not detach:
        click.echo(f"built {started.path}")


@common.id_command(workspace, "images", "workspace_id")
def workspace_images(c: WorkbenchClient, workspace_id: int) -> None:
    """The docker save tars in the workspace's docker_image/."""
    for tar in c.workspaces.images(workspace_id):
        click.echo(f"{tar.size / 1e6:>9.1f} MB  {tar.modified_at:%Y-%m-%d %H:%M}  {tar.path}")
