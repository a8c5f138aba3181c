"""Deploys (kind ``service-deploy``): bring a service's replicas to the number asked, in
the server (no container of its own). Each replica is a container of the version's
environment image running ``python -m workbench.serving`` on the served format (mounted
read-only), or of an algorithm's inference image run by the inference contract (the
version's files at ``$MODEL_DIR``, ``PORT``), as uid 1000 with the service's CPU and
memory, its port 8080 published on 127.0.0.1. A deploy removes the replicas that are gone,
starts the missing ones (and the ones it is told to replace) and waits until each answers
its health route (``/v2/health/ready``; an inference image's ``/health``), points the
service's endpoint (:mod:`workbench.deployments.proxy`) at the replicas it keeps, and only
then stops those that are too many or replaced, after letting them answer what they were
sent: a change of replicas drops no request. A replica that exits before it is ready fails
the deploy with its last log lines, and what the deploy started is removed. Deploys are
idempotent: a server that stops during one queues it again when it starts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from workbench.backends.base import (
    MANAGED_LABEL,
    Backend,
    Limits,
    Mount,
    RunInfo,
    RunSpec,
    RunState,
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
#: the labels that find a service's replicas on the backend
SERVICE_LABEL, REPLICA_LABEL = "workbench.service", "workbench.replica"
MODEL_DIR, SERVICE_DIR = "/workbench/model", "/workbench/service"
SERVER_PORT = 8080
READY_TIMEOUT_S = 120
#: how long a replica taken out of the endpoint still gets to answer what it was sent
DRAIN_S = 1.0
TAIL_LINES = 20
#: how long a replica a deploy keeps may take to answer its health route before it is
#: replaced as hung
KEPT_GRACE_S = 3.0


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
        with self.registry.session() as s:
            if s.get(Service, spec["service_id"]) is None:
                raise JobFailed(f"service {spec['service_id']} was deleted: nothing to deploy")
        backend = ctx.backend
        wanted = int(spec["replicas"])
        kept: dict[int, RunInfo] = {}
        doomed: list[RunInfo] = []
        if spec.get("why"):
            ctx.log(f"[deploy] {spec['why']}")
        replace = set(spec.get("replace", []))
        for run in replica_runs(backend, self.instance, spec["service_id"]):
            index = replica_index(run)
            alive = run.state == RunState.RUNNING and index not in replace
            if not alive or spec.get("restart") or index >= wanted or index in kept:
                doomed.append(run)
            else:
                kept[index] = run
        for run in doomed:  # the dead go at once; the others serve until replaced
            if run.state != RunState.RUNNING:
                ctx.log(f"[deploy] removing replica {run.labels.get(REPLICA_LABEL)} ({run.state})")
                backend.remove(run.id)
        doomed = [run for run in doomed if run.state == RunState.RUNNING]
        health = health_route(spec["runtime"])
        for index, run in sorted(kept.items()):  # a kept replica must answer (not hung)
            if not answers(run, health, within=KEPT_GRACE_S):
                ctx.log(f"[deploy] replica {index} does not answer {health}: replaced")
                doomed.append(kept.pop(index))
        started: list[RunInfo] = []
        try:
            for index in range(wanted):
                if index not in kept:
                    ctx.check()
                    ctx.log(f"[deploy] starting replica {index}")
                    kept[index] = backend.run(self._replica(ctx, index))
                    started.append(kept[index])
            for done, index in enumerate(sorted(kept)):
                self._wait_ready(ctx, kept[index], index)
                ctx.progress((done + 1) / max(1, wanted))
        except BaseException:
            for run in started:  # what this deploy started and did not get ready goes
                backend.stop(run.id, timeout=5)
                backend.remove(run.id)
            raise
        now = [backend.status(kept[i].id) for i in sorted(kept)]
        self.publish(spec["service_id"], [t for t in map(replica_target, now) if t])
        targets = {i: replica_target(run) for i, run in zip(sorted(kept), now, strict=True)}
        if doomed:
            time.sleep(DRAIN_S)  # the proxy's old workers finish what they sent them
        for run in doomed:
            ctx.log(f"[deploy] removing replica {run.labels.get(REPLICA_LABEL)}")
            backend.stop(run.id, timeout=10)
            backend.remove(run.id)
        message = f"{wanted} replica{'' if wanted == 1 else 's'} ready" if wanted else "stopped"
        return Outcome(message, {"replicas": {str(i): t for i, t in targets.items()}})

    def _replica(self, ctx: JobContext, index: int) -> RunSpec:
        """Replica ``index``: the model server, or the algorithm's inference image (run by
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
        return RunSpec(
            name=f"workbench-svc-{spec['service_id']}-{index}-{uuid.uuid4().hex[:6]}",
            image=spec["image"],
            command=command,
            env=env,
            mounts=tuple(mounts),
            ports={SERVER_PORT: 0},
            limits=Limits(cpus=float(spec["cpus"]), memory_mb=int(spec["memory_mb"])),
            labels={
                MANAGED_LABEL: self.instance,
                SERVICE_LABEL: str(spec["service_id"]),
                REPLICA_LABEL: str(index),
            },
            user=f"{RUN_UID}:{RUN_UID}",
            restart_on_failure=True,
            # reached by the proxy on this host only, never by another run (nor another
            # replica of its own); nothing but its files and its scratch written
            network=service_network(self.instance, int(spec["service_id"])),
            read_only_root=True,
            tmpfs=SCRATCH,
        )

    def _wait_ready(self, ctx: JobContext, run: RunInfo, index: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            ctx.check()
            info = ctx.backend.status(run.id)
            if info.state != RunState.RUNNING or info.restarts:
                last = list(ctx.backend.logs(run.id, tail=TAIL_LINES))
                why = (
                    "ran out of memory"
                    if info.oom_killed
                    else f"exited with {info.exit_code}"
                    if info.exit_code is not None
                    else "exited"
                )
                raise JobFailed(
                    f"replica {index} {why} before it was ready; its last log lines:\n"
                    + "\n".join(last)
                )
            if answers(info, health_route(ctx.spec["runtime"])):
                ctx.log(f"[deploy] replica {index} ready at {replica_target(info)}")
                return
            if time.monotonic() > deadline:
                raise JobFailed(
                    f"replica {index} did not get ready in {READY_TIMEOUT_S} s; see its log"
                )
            time.sleep(0.2)

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


def answers(run: RunInfo, health: str, within: float = 0.0) -> bool:
    """Whether a replica answers 200 on its health route: one try of a second, or tries
    until ``within`` seconds have passed. One not running does not."""
    target = replica_target(run)
    if target is None:
        return False
    url = f"http://{target}{health}"
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def replica_runs(backend: Backend, instance: str, service_id: int) -> list[RunInfo]:
    """A service's replicas on the backend (this instance's), by index."""
    runs = backend.list({MANAGED_LABEL: instance, SERVICE_LABEL: str(service_id)})
    return sorted(runs, key=replica_index)


def replica_target(run: RunInfo) -> str | None:
    """``host:port`` where this host reaches a running replica's server: the container's own
    address, so that no port-publishing proxy of the engine is in the path (Docker's costs
    a quarter of the endpoint's throughput, measured with ``benchmarks/serving.py``); from a
    backend that gives none, its port published on 127.0.0.1."""
    if run.state != RunState.RUNNING:
        return None
    if run.address:
        return f"{run.address}:{SERVER_PORT}"
    port = run.ports.get(SERVER_PORT)
    return f"127.0.0.1:{port}" if port else None


def replica_index(run: RunInfo) -> int:
    """A replica's index, from its label."""
    return int(run.labels.get(REPLICA_LABEL, "-1"))


def health_route(runtime: str) -> str:
    """The route that says a replica of a service with this runtime is ready."""
    return IMAGE_HEALTH if runtime == IMAGE_FORMAT else SERVER_HEALTH


def model_key_for(native_key: str, formats_key: str, fmt: str) -> str:
    """The store folder a replica serves: the native files, or a verified format's."""
    return native_key if fmt == "native" else f"{formats_key}/{fmt}"
