"""Deploys (kind ``service-deploy``): bring a service's replicas to the number asked, in
the server (no container of its own). Each replica is a container of the version's
environment image running ``python -m workbench.serving`` on the served format (mounted
read-only), or of an algorithm's inference image run by the inference contract (the
version's files at ``$MODEL_DIR``, ``PORT``), as uid 1000 with the service's CPU and
memory, on a network of the service's own. The backend keeps them as a replicated service
(:meth:`workbench.backends.base.Backend.deploy_replicated`): a rolling update that waits
until each new replica answers its health route (``/v2/health/ready``; an inference
image's ``/health``), points the service's endpoint (:mod:`workbench.deployments.proxy`) at
the replicas it keeps, and only then removes the others: a change of replicas drops no
request. A replica that exits before it is ready fails the deploy with its last log lines,
and what the deploy started is removed. Deploys are idempotent: a server that stops during
one queues it again when it starts."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from sqlalchemy.orm import Session

from workbench.backends.base import (
    MANAGED_LABEL,
    Backend,
    HealthCheck,
    Limits,
    Mount,
    Replica,
    ReplicatedSpec,
    Rollout,
    RunSpec,
)
from workbench.deployments.schemas import IMAGE_FORMAT
from workbench.errors import JobFailed
from workbench.jobs.files import RUN_UID, path_in_run
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.networks import SCRATCH, service_network
from workbench.registry.db import Registry
from workbench.registry.models import Job, Service
from workbench.store import ArtifactStore

DEPLOY_KIND = "service-deploy"
TARGET_TYPE = "service"
#: the route that says a replica is ready: the model server's (V2), an inference image's
SERVER_HEALTH, IMAGE_HEALTH = "/v2/health/ready", "/health"
#: the label that finds a service's replicas on the backend (with its server's instance)
SERVICE_LABEL = "workbench.service"
MODEL_DIR, SERVICE_DIR = "/workbench/model", "/workbench/service"
SERVER_PORT = 8080


def service_key(service_id: int) -> str:
    """The store folder of a service's own files (the signature its replicas read)."""
    return f"services/{service_id}"


class DeployKind(JobKind):
    name = DEPLOY_KIND
    requeue_interrupted = True
    interrupted_message = "The server stopped during this deploy; it is queued again."

    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        publish: Callable[[int, list[str]], None],
        *,
        instance: str,
        concurrency: int = 2,
    ) -> None:
        """``publish(service_id, ports)``: point the service's endpoint at these replicas;
        ``instance``: this server's name on its replicas (services of another Workbench on
        the same engine have the same ids)."""
        self.registry = registry
        self.instance = instance
        self.store = store
        self.publish = publish
        self.concurrency = concurrency

    def prepare(self, ctx: JobContext) -> None:
        return None

    def execute(self, ctx: JobContext) -> Outcome:
        spec = ctx.spec
        service_id = int(spec["service_id"])
        with self.registry.session() as s:
            if s.get(Service, service_id) is None:
                raise JobFailed(f"service {service_id} was deleted: nothing to deploy")
        if spec.get("why"):
            ctx.log(f"[deploy] {spec['why']}")

        ready = ctx.backend.deploy_replicated(
            ReplicatedSpec(
                self._replica(ctx),
                int(spec["replicas"]),
                SERVER_PORT,
                HealthCheck(health_route(spec["runtime"])),
            ),
            Rollout(
                functools.partial(self.publish, service_id),
                lambda line: ctx.log(f"[deploy] {line}"),
                ctx.check,
                ctx.progress,
                restart=bool(spec.get("restart")),
                replace=frozenset(spec.get("replace", [])),
            ),
        )
        wanted = len(ready)
        message = f"{wanted} replica{'' if wanted == 1 else 's'} ready" if wanted else "stopped"
        return Outcome(message, {"replicas": {str(r.slot): r.target for r in ready}})

    def _replica(self, ctx: JobContext) -> RunSpec:
        """A replica's run: the model server, or the algorithm's inference image (run by
        the inference contract: the version's files at ``$MODEL_DIR``, ``PORT``)."""
        spec, backend = ctx.spec, ctx.backend
        own = self.store.path(service_key(spec["service_id"]))
        own.mkdir(parents=True, exist_ok=True)
        mounts, model_in_run = [], ""
        if spec.get("model_key"):
            model_dir = self.store.path(spec["model_key"])
            model_in_run = path_in_run(backend, model_dir, MODEL_DIR)
            mounts.append(Mount(model_dir, model_in_run, True))
        command: tuple[str, ...] | None
        if spec["runtime"] == IMAGE_FORMAT:
            command = (*spec["command"], *spec["args"]) or None  # None: the image's own
            env = {
                **spec["env"],
                "PORT": str(SERVER_PORT),
                "MODEL_DIR": model_in_run,
                "PYTHONUNBUFFERED": "1",
            }
        else:
            (own / "signature.json").write_text(json.dumps(spec["signature"]), encoding="utf-8")
            mounts.append(Mount(own, path_in_run(backend, own, SERVICE_DIR), True))
            options = spec["options"]
            command = (
                "python", "-m", "workbench.serving",
                model_in_run,
                "--runtime", spec["runtime"],
                "--name", spec["model"],
                "--version", str(spec["version"]),
                "--port", str(SERVER_PORT),
                "--threads", str(options["threads"]),
                "--max-batch", str(options["max_batch"]),
                "--max-delay-ms", str(options["max_delay_ms"]),
                "--max-queue", str(options["max_queue"]),
                "--signature",
                path_in_run(backend, own / "signature.json", f"{SERVICE_DIR}/signature.json"),
            )  # fmt: skip
            env = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(options["threads"])}
        network = service_network(self.instance, int(spec["service_id"]))
        return RunSpec(
            # the server's name in it: servers that share an engine have the same service ids
            name=network.name,
            image=spec["image"],
            command=command,
            env=env,
            mounts=tuple(mounts),
            ports={SERVER_PORT: 0},
            limits=Limits(cpus=float(spec["cpus"]), memory_mb=int(spec["memory_mb"])),
            labels=service_labels(self.instance, int(spec["service_id"])),
            user=f"{RUN_UID}:{RUN_UID}",
            restart_on_failure=True,
            # reached by the proxy on this host only, never by another run (nor another
            # replica of its own); nothing but its files and its scratch written
            network=network,
            read_only_root=True,
            tmpfs=SCRATCH,
        )

    def sync(self, s: Session, job: Job) -> None:
        """The service's state follows its newest deploy."""
        service = s.get(Service, job.target_id) if job.target_id is not None else None
        if service is None or service.job_id != job.id:
            return
        if job.state in ACTIVE_JOB_STATES:
            service.state, service.message = "deploying", job.message or "deploying"
        elif job.state == "succeeded":
            service.state = "running" if int(job.spec.get("replicas", 0)) else "stopped"
            service.message = job.message
        else:
            service.state, service.message = "failed", job.message or f"the deploy {job.state}"


def service_labels(instance: str, service_id: int) -> dict[str, str]:
    """The labels of a service's replicas (``instance``: the server that runs them)."""
    return {MANAGED_LABEL: instance, SERVICE_LABEL: str(service_id)}


def service_replicas(backend: Backend, instance: str, service_id: int) -> list[Replica]:
    """A service's replicas on the backend (``instance``'s), by slot."""
    return backend.replicas(service_labels(instance, service_id), SERVER_PORT)


def health_route(runtime: str) -> str:
    """The route that says a replica of a service with this runtime is ready."""
    return IMAGE_HEALTH if runtime == IMAGE_FORMAT else SERVER_HEALTH


def model_key_for(native_key: str, formats_key: str, fmt: str) -> str:
    """The store folder a replica serves: the native files, or a verified format's."""
    return native_key if fmt == "native" else f"{formats_key}/{fmt}"
