"""``workbench service``: services from model versions (through the REST API): list, show,
create (the endpoint's key printed once), scale, stop, start, restart, delete; key rotate;
predict (one sample, through the endpoint), logs and metrics. Each change is a deploy job,
followed."""

from __future__ import annotations

import json
import time

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.deployments.metrics import rates
from workbench.deployments.schemas import ServiceInfo, ServiceStarted
from workbench.enums import Visibility

service = click.Group(
    "service", help="Services: a model version served by replicas of the model server."
)


def _print(info: ServiceInfo) -> None:
    where = " ".join(f"r{r.index}:{r.address}" for r in info.replica_states if r.address)
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


@common.list_command(service, "list", _print)
@common.json_option
def service_list(c: WorkbenchClient) -> list[ServiceInfo]:
    """Services I can see, newest first."""
    return c.services.list()


_by_id = common.IdCommands(service, "service", "service_id", lambda c: c.services, _print)
_by_id.show("One service with each replica.")


@service.command("create")
@click.argument("name")
@click.argument("version_id", type=int, required=False)
@click.option(
    "--algorithm",
    "algorithm_id",
    type=int,
    help="Serve with this algorithm's inference image (VERSION_ID's files at $MODEL_DIR).",
)
@click.option(
    "--format", "fmt", help="A verified format, or native (default: the version's default format)."
)
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--cpus", type=float, default=1.0, show_default=True)
@click.option("--memory-mb", type=int, default=1024, show_default=True)
@click.option("--max-batch", type=int, default=32, show_default=True)
@click.option("--visibility", type=common.choice(Visibility), default="private", show_default=True)
@click.option(
    "--public-endpoint",
    is_flag=True,
    help="Its endpoint answers anyone, without a key (default: only callers with its key).",
)
@common.detach_option
@common.friendly
def service_create(
    name: str,
    version_id: int | None,
    algorithm_id: int | None,
    fmt: str | None,
    replicas: int,
    cpus: float,
    memory_mb: int,
    max_batch: int,
    visibility: str,
    public_endpoint: bool,
    detach: bool,
) -> None:
    """Serve a model version with the model server, or with an algorithm's inference image
    (--algorithm); follows the deploy unless --detach. Prints the endpoint's key, this
    once."""
    body = {
        "name": name,
        "version_id": version_id,
        "algorithm_id": algorithm_id,
        "replicas": replicas,
        "cpus": cpus,
        "memory_mb": memory_mb,
        "options": {"max_batch": max_batch},
        "visibility": visibility,
        "public_endpoint": public_endpoint,
    }
    if fmt:
        body["format"] = fmt
    with common.client() as c:
        started = ServiceStarted.model_validate(c.json("POST", "/services", json=body))
        if started.service.key:
            _echo_key(started.service.id, started.service.key)
        _follow(c, started, detach)


def _echo_key(service_id: int, key: str) -> None:
    click.echo(f"service {service_id}'s endpoint key (shown this once; keep it): {key}")
    click.echo(f"  send it as the header: Authorization: Bearer {key}")


@service.group("key")
def service_key() -> None:
    """The key a service's endpoint asks its callers for."""


@common.id_command(service_key, "rotate", "service_id")
def service_key_rotate(c: WorkbenchClient, service_id: int) -> None:
    """A new key for the service's endpoint (its owner's); the old one is refused at once."""
    _echo_key(service_id, c.services.rotate_key(service_id))


@common.id_command(service, "scale", "service_id")
@click.argument("replicas", type=int)
@common.detach_option
def service_scale(c: WorkbenchClient, service_id: int, replicas: int, detach: bool) -> None:
    """Set the number of replicas."""
    data = c.json("POST", f"/services/{service_id}/scale", json={"replicas": replicas})
    _follow(c, ServiceStarted.model_validate(data), detach)


def _action(name: str, help_text: str) -> None:
    @common.id_command(service, name, "service_id", help_text)
    @common.detach_option
    def command(c: WorkbenchClient, service_id: int, detach: bool) -> None:
        data = c.json("POST", f"/services/{service_id}/{name}")
        _follow(c, ServiceStarted.model_validate(data), detach)


_action("stop", "Replicas to 0; the service and its settings are kept.")
_action("start", "Its replicas again.")
_action("restart", "Every replica replaced by a new one.")


@common.id_command(service, "delete", "service_id")
def service_delete(c: WorkbenchClient, service_id: int) -> None:
    """Remove a service and its replicas."""
    c.services.delete(service_id)
    click.echo(f"service {service_id} deleted")


@service.command("predict")
@click.argument("service_id", type=int)
@click.argument("sample")
@common.friendly
def service_predict(service_id: int, sample: str) -> None:
    """One sample through the service's simple route: SAMPLE is its JSON object
    ('{"features": [5.1, 3.5, 1.4, 0.2]}'), or @FILE for a file holding it."""
    text = click.open_file(sample[1:]).read() if sample.startswith("@") else sample
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint="SAMPLE") from exc
    with common.client() as c:
        started = time.perf_counter()
        answer = c.services.predict(service_id, body)
        took = (time.perf_counter() - started) * 1000
        click.echo(json.dumps(answer))
        click.echo(f"({took:.1f} ms)", err=True)


@common.id_command(service, "logs", "service_id")
@click.option("--replica", type=int, default=None, help="One replica's (its index).")
@click.option("--tail", type=int, default=200, show_default=True, help="Lines per replica.")
def service_logs(c: WorkbenchClient, service_id: int, replica: int | None, tail: int) -> None:
    """The replicas' last log lines."""
    for log in c.services.logs(service_id, replica=replica, tail=tail):
        click.echo(f"--- replica {log.index} ({log.run_id[:12]})")
        click.echo(log.text)


@common.id_command(service, "metrics", "service_id")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Between readings.")
@click.option("--json", "as_json", is_flag=True, help="One reading's counters, as JSON.")
def service_metrics(c: WorkbenchClient, service_id: int, seconds: float, as_json: bool) -> None:
    """What the service does now: two readings SECONDS apart give requests per second,
    errors, latency percentiles and the mean batch size."""
    before = c.services.metrics(service_id)
    if as_json:
        click.echo(before.model_dump_json(indent=1))
        return
    time.sleep(seconds)
    r = rates(before, c.services.metrics(service_id))

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    batch = "-" if r.mean_batch is None else f"{r.mean_batch:.1f}"
    click.echo(
        f"{r.replicas} replicas · {r.request_rate:.1f} req/s · {r.error_rate:.1f} errors/s · "
        f"p50 {ms(r.p50_ms)} p95 {ms(r.p95_ms)} p99 {ms(r.p99_ms)} · mean batch {batch} · "
        f"queue {r.queue_depth:.0f}"
    )
