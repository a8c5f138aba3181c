"""``workbench login`` (save a server's URL and token) and ``workbench lab`` (JupyterLab with
the Workbench on this machine)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click

from workbench.cli.common import friendly, local_workbench
from workbench.client import WorkbenchClient
from workbench.config import Settings, default_owner


@click.command()
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


@click.command()
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
    """Upgrade the registry and start JupyterLab with the Workbench; prints the URL.
    JupyterLab replaces this command (same pid): stopping it stops the server."""
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
        "workbench_ext.launch",  # JupyterLab (see there)
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
    sys.stderr.flush()
    # JupyterLab in this process's place (same pid): a process manager's SIGTERM or SIGINT
    # reaches the Jupyter server itself, whose shutdown stops the Workbench; a child would
    # be left running, orphaned
    os.execve(sys.executable, cmd, env)
