"""``workbench service``: services from model versions (through the REST API): list, show,
create, scale, stop, start, restart, delete. Each change is a deploy job, followed."""

from __future__ import annotations

import click

from workbench.cli import common
from workbench.cli.common import choice, client, echo_json, friendly
from workbench.client import WorkbenchClient
from workbench.deployments.schemas import ServiceInfo, ServiceStarted
from workbench.enums import Visibility


@click.group()
def service() -> None:
    """Services: a model version served by replicas of the model server."""


def _print(info: ServiceInfo) -> None:
    where = " ".join(f"r{r.index}:127.0.0.1:{r.port}" for r in info.replica_states if r.port)
    click.echo(
        f"{info.id:>5}  {info.name:<20} {info.model} v{info.version} {info.format:<15} "
        f"{info.state:<10} {len(info.replica_states)}/{info.replicas} {where}".rstrip()
    )
    if info.message and info.state == "failed":
        click.echo(f"       {info.message}")


def _follow(c: WorkbenchClient, started: ServiceStarted, detach: bool) -> None:
    common.follow_job(c, started.job_id, detach=detach)
    if not detach:
        _print(c.services.get(started.service.id))


@service.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly
def service_list(as_json: bool) -> None:
    """Services I can see, newest first."""
    with client() as c:
        services = c.services.list()
        if as_json:
            echo_json(services)
            return
        for info in services:
            _print(info)


@service.command("show")
@click.argument("service_id", type=int)
@friendly
def service_show(service_id: int) -> None:
    """One service with each replica."""
    with client() as c:
        click.echo(c.services.get(service_id).model_dump_json(indent=1))


@service.command("create")
@click.argument("name")
@click.argument("version_id", type=int)
@click.option("--format", "fmt", help="A verified format, or native (default: the best).")
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--cpus", type=float, default=1.0, show_default=True)
@click.option("--memory-mb", type=int, default=1024, show_default=True)
@click.option("--max-batch", type=int, default=32, show_default=True)
@click.option("--visibility", type=choice(Visibility), default="private", show_default=True)
@common.detach_option
@friendly
def service_create(
    name: str,
    version_id: int,
    fmt: str | None,
    replicas: int,
    cpus: float,
    memory_mb: int,
    max_batch: int,
    visibility: str,
    detach: bool,
) -> None:
    """Serve a model version; follows the deploy unless --detach."""
    body = {
        "name": name,
        "version_id": version_id,
        "replicas": replicas,
        "cpus": cpus,
        "memory_mb": memory_mb,
        "options": {"max_batch": max_batch},
        "visibility": visibility,
    }
    if fmt:
        body["format"] = fmt
    with client() as c:
        started = ServiceStarted.model_validate(c.json("POST", "/services", json=body))
        _follow(c, started, detach)


@service.command("scale")
@click.argument("service_id", type=int)
@click.argument("replicas", type=int)
@common.detach_option
@friendly
def service_scale(service_id: int, replicas: int, detach: bool) -> None:
    """Set the number of replicas."""
    with client() as c:
        data = c.json("POST", f"/services/{service_id}/scale", json={"replicas": replicas})
        _follow(c, ServiceStarted.model_validate(data), detach)


def _action(name: str, help_text: str) -> None:
    @service.command(name, help=help_text)
    @click.argument("service_id", type=int)
    @common.detach_option
    @friendly
    def command(service_id: int, detach: bool) -> None:
        with client() as c:
            data = c.json("POST", f"/services/{service_id}/{name}")
            _follow(c, ServiceStarted.model_validate(data), detach)


_action("stop", "Replicas to 0; the service and its settings are kept.")
_action("start", "Its replicas again.")
_action("restart", "Every replica replaced by a new one.")


@service.command("delete")
@click.argument("service_id", type=int)
@friendly
def service_delete(service_id: int) -> None:
    """Remove a service and its replicas."""
    with client() as c:
        c.services.delete(service_id)
        click.echo(f"service {service_id} deleted")
