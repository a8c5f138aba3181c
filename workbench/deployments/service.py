"""Services: a model version served by replicas of the model server (manual 2.7).

Create one from a version you can see: the format served is the one asked (a verified
format, or ``native``), else the version's default serving format (the fastest exact
format, ``choose_default``), else its native model (:mod:`workbench.deployments.sources`);
the replicas run in the version's environment image.
Every change of the replicas is a deploy job (:mod:`workbench.deployments.jobs`): create,
start, stop (replicas to 0; the service and its settings are kept), scale, restart.

The engine starts a replica that crashed again. What it does not, the watch of a running
server does (:meth:`DeploymentService.heal`, every few seconds): a replica that is gone
(removed, or stopped through the engine; seen on two looks) or does not answer its health
route for ``hung_after_s`` (hung) is replaced by a deploy job of the service's owner, its
reason in the job's log; the proxy has taken such a replica out of the endpoint already.
On a backend whose engine heals replicas itself (Swarm), only the replicas of deleted
services are the watch's business.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import KW_ONLY, dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.access import ShareableService, check_visibility, get_owned, get_visible
from workbench.algorithms.params import resolve_parameters
from workbench.algorithms.service import image_settings
from workbench.backends.base import MANAGED_LABEL, Backend, OnBackend, RunState
from workbench.deployments.jobs import (
    DEPLOY_KIND,
    SERVER_PORT,
    SERVICE_LABEL,
    TARGET_TYPE,
    DeployKind,
    health_route,
    model_key_for,
    service_key,
    service_labels,
    service_replicas,
)
from workbench.deployments.metrics import parse as parse_metrics
from workbench.deployments.proxy import Endpoint, Proxy
from workbench.deployments.schemas import (
    IMAGE_FORMAT,
    ReplicaInfo,
    ReplicaLog,
    ReplicaMetrics,
    ServiceCreate,
    ServiceInfo,
    ServiceKey,
    ServiceMetrics,
    ServiceStarted,
)
from workbench.deployments.sources import api_spec, inference_image, served_format
from workbench.enums import Role
from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.jobs.service import JobService
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.models.jobs import formats_key
from workbench.models.versions import image_of, visible_version
from workbench.quotas import QuotaService
from workbench.registry.db import Registry
from workbench.registry.models import (
    Job,
    Model,
    ModelVersion,
    Service,
    User,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore
from workbench.users import Actor, hash_token, username_of

#: seconds between two looks of the watch at the running services' replicas
HEAL_INTERVAL_S = 5.0
#: a running replica that does not answer its health route for this long is replaced
HUNG_AFTER_S = 30.0
#: a replica gone or exited for this long (two looks) is replaced
GONE_AFTER_S = 2.0
log = logging.getLogger(__name__)
#: how long a replica's /metrics may take to answer
METRICS_TIMEOUT_S = 2.0
#: how a service's endpoint key starts (told apart from a Workbench token, ``wb_``)
KEY_PREFIX = "wbsk_"


def new_key() -> tuple[str, str]:
    """A service's endpoint key and its SHA-256 (hex, what the registry and the proxy's map
    keep): 256 random bits, so a hash without salt is safe to keep."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_token(key)


@dataclass(eq=False)
class DeploymentService(ShareableService[Service, ServiceInfo], OnBackend):
    """The services: their rows, replicas and endpoints, and the watch that heals them.

    :param instance: this server's name on its replicas (see :class:`DeployKind`).
    :param quotas: checked on create, scale, start and restart (never on a heal).
    """

    model = Service
    entity = "service"
    newest_first = True

    registry: Registry
    store: ArtifactStore
    jobs: JobService
    proxy: Proxy
    _: KW_ONLY
    instance: str
    quotas: QuotaService

    def __post_init__(self) -> None:
        self._publishing = threading.Lock()
        self.deploy_kind = DeployKind(
            self.registry, self.store, self.publish, instance=self.instance
        )
        self.hung_after_s = HUNG_AFTER_S
        #: "<service id>/<replica index>" -> when it was first seen in trouble (monotonic)
        self._unhealthy_since: dict[str, float] = {}
        self._healing = threading.Lock()
        self._unwatched = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- the endpoints --------------------------------------------------------------------

    def publish(self, service_id: int | None = None, targets: list[str] | None = None) -> None:
        """Point every service's endpoint at its running replicas (``service_id``'s at
        ``targets`` instead, ``host:port`` each: the ones its deploy keeps) and reload the
        proxy."""
        with self._publishing, self.registry.session() as s:
            rows = s.scalars(sa.select(Service).where(Service.port.is_not(None))).all()
            ports = {row.port for row in rows if row.port is not None}
            taken = self.proxy.held_elsewhere(ports)  # one look at the proxy per publish
            for row in rows:
                if row.port in taken:
                    # another process took it since it was chosen: the endpoint moves, and
                    # its owner is told where
                    new = _free_port(ports)
                    ports.add(new)
                    row.message = (
                        f"The endpoint moved from port {row.port} to {new}: another process "
                        f"on this machine took {row.port}. Callers use {self.proxy.bind}:{new}."
                    )
                    log.warning("service %s: %s", row.id, row.message)
                    row.port = new
            backend = self.backend
            endpoints = []
            for row in rows:
                if row.id == service_id and targets is not None:
                    replicas = tuple(targets)
                else:
                    found = service_replicas(backend, self.instance, row.id)
                    replicas = tuple(r.target for r in found if r.target)
                assert row.port is not None
                endpoints.append(
                    Endpoint(
                        row.id,
                        row.name,
                        row.port,
                        replicas,
                        health_route(row.runtime),
                        key_hash=row.key_hash,
                        public=row.public_endpoint,
                    )
                )
            self.proxy.apply(endpoints)

    # --- the watch --------------------------------------------------------------------------

    def watch(self, interval: float = HEAL_INTERVAL_S) -> None:
        """Look at the running services' replicas every ``interval`` seconds (a server's
        thread, until :meth:`unwatch`)."""
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._unwatched.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(interval,), name="workbench-services-watch", daemon=True
        )
        self._watcher.start()

    def unwatch(self) -> None:
        self._unwatched.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
            self._watcher = None

    def _watch(self, interval: float) -> None:
        while True:
            try:
                for job_id, why in self.heal():
                    log.warning("services watch: deploy job %s: %s", job_id, why)
            except Exception:  # the watch goes on: the engine may be back at the next look
                log.exception("services watch: a look at the replicas failed")
            if self._unwatched.wait(interval):
                return

    def heal(self) -> list[tuple[int, str]]:
        """One look at every running service's replicas (see the module doc): a deploy job
        for each service with a replica gone, stopped or hung; (job id, why) of each. A
        service that cannot be deployed now (its image gone, say) is logged and left."""
        backend = self.backend
        now, seen, queued = time.monotonic(), set[str](), []
        with self._healing, self.registry.session() as s:  # one look at a time
            rows = s.scalars(sa.select(Service).where(Service.state == "running")).all()
            # an engine that heals its own replicas (Swarm) needs no look at them
            for row in [] if backend.heals_replicas else rows:
                if row.job_id is not None and _active(s, row.job_id):
                    continue
                try:
                    done = self._heal(s, backend, row, now, seen)
                except WorkbenchError as exc:
                    log.warning("services watch: service %s: %s", row.name, exc.message)
                    continue
                if done is not None:
                    queued.append(done)
            self._unhealthy_since = {k: v for k, v in self._unhealthy_since.items() if k in seen}
            self._remove_orphans(backend, set(s.scalars(sa.select(Service.id))))
        return queued

    def _remove_orphans(self, backend: Backend, services: set[int]) -> None:
        """Remove this server's replicas whose service is gone (one a deploy started as it
        was deleted): they serve no endpoint and only take CPU and memory."""
        owners = {
            replica.run.labels.get(SERVICE_LABEL)
            for replica in backend.replicas({MANAGED_LABEL: self.instance}, SERVER_PORT)
        }
        for owner in owners - {None, *map(str, services)}:
            log.warning("services watch: removing the replicas of deleted service %s", owner)
            backend.remove_replicated({MANAGED_LABEL: self.instance, SERVICE_LABEL: str(owner)})

    def _heal(
        self, s: Session, backend: Backend, row: Service, now: float, seen: set[str]
    ) -> tuple[int, str] | None:
        """One service's look (:meth:`heal`): the deploy job it got, and why; or None."""
        found = {r.slot: r for r in service_replicas(backend, self.instance, row.id)}
        health = health_route(row.runtime)
        problems, replace = [], []
        for index in range(row.replicas):
            replica, key = found.get(index), f"{row.id}/{index}"
            if replica is not None and replica.run.state == RunState.RUNNING:
                if backend.answers(replica, health):
                    continue
                trouble, after = f"did not answer {health}", self.hung_after_s
                replace.append(index)
            else:  # the engine may be starting it again: seen twice, it is gone
                trouble = "is gone" if replica is None else f"is {replica.run.state.value}"
                after = GONE_AFTER_S
            seen.add(key)
            since = self._unhealthy_since.setdefault(key, now)
            if now - since >= after:
                problems.append(f"replica {index} {trouble} ({now - since:.0f} s)")
            elif index in replace:
                replace.remove(index)
        if not problems:
            return None
        owner = s.get_one(User, row.owner_id)
        actor = Actor(id=owner.id, username=owner.username, role=Role(owner.role))
        why = "; ".join(problems) + ": replaced"
        started = self._deploy(s, actor, row, row.replicas, replace=replace, why=why)
        return started.job_id, f"service {row.name}: {why}"

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor) -> list[ServiceInfo]:
        """The services the actor sees, newest first, each with its replicas now."""
        return self._list(actor, None)

    def metrics(self, actor: Actor, service_id: int) -> ServiceMetrics:
        """Every running replica's counters now (a replica that does not answer is listed
        with the reason); two readings give the rates (:func:`metrics.rates`)."""
        with self.registry.session() as s:
            get_visible(s, Service, service_id, actor, "service")
        replicas = []
        for replica in service_replicas(self.backend, self.instance, service_id):
            if replica.target is None:
                continue
            index, run_id = replica.slot, replica.run.id
            try:
                page = httpx.get(f"http://{replica.target}/metrics", timeout=METRICS_TIMEOUT_S)
                page.raise_for_status()
            except httpx.HTTPError as exc:
                replicas.append(ReplicaMetrics(index=index, run_id=run_id, error=str(exc)))
                continue
            replicas.append(parse_metrics(page.text, index=index, run_id=run_id))
        return ServiceMetrics(service_id=service_id, at=time.time(), replicas=replicas)

    def logs(
        self, actor: Actor, service_id: int, replica: int | None = None, tail: int = 200
    ) -> list[ReplicaLog]:
        """The last ``tail`` lines of each replica's log (of replica ``replica`` only)."""
        if not 1 <= tail <= 10_000:
            raise InvalidInput("tail is 1 to 10000 lines.", field="tail")
        with self.registry.session() as s:
            service = get_visible(s, Service, service_id, actor, "service")
        backend = self.backend
        found = service_replicas(backend, self.instance, service_id)
        if replica is not None:
            found = [r for r in found if r.slot == replica]
            if not found:
                raise NotFound(
                    f"Service {service.name} has no replica {replica}; GET "
                    f"/services/{service_id} lists its replicas.",
                    field="replica",
                )
        return [
            ReplicaLog(
                index=r.slot,
                run_id=r.run.id,
                text="\n".join(backend.logs(r.run.id, tail=tail)),
            )
            for r in found
        ]

    def address(self, actor: Actor, service_id: int) -> str:
        """``host:port`` of the service's endpoint, for one who may see it."""
        with self.registry.session() as s:
            service = get_visible(s, Service, service_id, actor, "service")
            if service.port is None:
                raise Conflict(f"Service {service.name} has no endpoint.", service=service_id)
            return f"{self.proxy.bind}:{service.port}"

    # --- changing -------------------------------------------------------------------------

    def create(self, actor: Actor, request: ServiceCreate) -> ServiceStarted:
        check_visibility(actor, request.visibility)
        with self.registry.session() as s:
            version = (
                visible_version(s, actor, request.version_id)
                if request.version_id is not None
                else None
            )
            if request.algorithm_id is not None:
                image = inference_image(s, actor, request.algorithm_id)
                fmt, runtime, image_ref = IMAGE_FORMAT, IMAGE_FORMAT, image.image_ref
            else:
                assert version is not None  # ServiceCreate asks for one of the two
                fmt, runtime = served_format(s, self.store, version, request.format)
                image_ref = image_of(s, version)
            taken = s.scalar(sa.select(Service.id).where(Service.name == request.name))
            if taken is not None:
                raise Conflict(
                    f"A service named {request.name!r} exists already (id {taken}); choose "
                    "another name.",
                    field="name",
                )
            key, key_hash = new_key()
            ports = s.scalars(sa.select(Service.port).where(Service.port.is_not(None))).all()
            service = Service(
                name=request.name,
                port=_free_port({p for p in ports if p is not None}),
                owner_id=actor.id,
                visibility=request.visibility,
                model_version_id=version.id if version is not None else None,
                algorithm_id=request.algorithm_id,
                image_ref=image_ref,
                replicas=request.replicas,
                format=fmt,
                runtime=runtime,
                cpus=request.cpus,
                memory_mb=request.memory_mb,
                options=request.options.model_dump(),
                state="deploying",
                key_hash=key_hash,
                public_endpoint=request.public_endpoint,
            )
            self.quotas.check_service(s, service, request.replicas)
            s.add(service)
            s.flush()
            started = self._deploy(s, actor, service, request.replicas)
            started.service.key = key  # this once
            return started

    def rotate_key(self, actor: Actor, service_id: int) -> ServiceKey:
        """A new key for the service's endpoint (its owner's); the old one is refused once
        this returns (the proxy reloaded). Allowed during a deploy."""
        key, key_hash = new_key()
        with self.registry.session() as s:
            get_owned(s, Service, service_id, actor, "service").key_hash = key_hash
        self.publish()
        return ServiceKey(service_id=service_id, key=key)

    def scale(self, actor: Actor, service_id: int, replicas: int) -> ServiceStarted:
        if not 0 <= replicas <= 32:
            raise InvalidInput("replicas is 0 to 32.", field="replicas")
        with self.registry.session() as s:
            service = self._owned(s, actor, service_id)
            self.quotas.check_service(s, service, replicas)
            service.replicas = replicas
            return self._deploy(s, actor, service, replicas)

    def stop(self, actor: Actor, service_id: int) -> ServiceStarted:
        """Replicas to 0; the service, its settings and its number of replicas are kept."""
        with self.registry.session() as s:
            return self._deploy(s, actor, self._owned(s, actor, service_id), 0)

    def start(self, actor: Actor, service_id: int) -> ServiceStarted:
        with self.registry.session() as s:
            service = self._owned(s, actor, service_id)
            self.quotas.check_service(s, service, max(1, service.replicas))
            return self._deploy(s, actor, service, max(1, service.replicas))

    def restart(self, actor: Actor, service_id: int) -> ServiceStarted:
        """Every replica replaced by a new one."""
        with self.registry.session() as s:
            service = self._owned(s, actor, service_id)
            self.quotas.check_service(s, service, max(1, service.replicas))
            return self._deploy(s, actor, service, max(1, service.replicas), restart=True)

    def delete(self, actor: Actor, service_id: int) -> None:
        """Remove its replicas and the service. The watch waits meanwhile: a look that began
        before the row was gone would otherwise start a deploy that brings replicas back."""
        with self._healing, self.registry.session() as s:
            service = self._owned(s, actor, service_id)
            self.backend.remove_replicated(service_labels(self.instance, service.id))
            s.delete(service)
        shutil.rmtree(self.store.path(service_key(service_id)), ignore_errors=True)
        self.publish()

    # --- helpers --------------------------------------------------------------------------

    def _owned(self, s: Session, actor: Actor, service_id: int) -> Service:
        service = get_owned(s, Service, service_id, actor, "service")
        if service.job_id is not None and _active(s, service.job_id):
            raise Conflict(
                f"Service {service.name} is being deployed (job {service.job_id}); wait for it "
                "to end, or cancel it.",
                job=service.job_id,
            )
        return service

    def _deploy(
        self,
        s: Session,
        actor: Actor,
        service: Service,
        replicas: int,
        *,
        restart: bool = False,
        replace: list[int] | None = None,
        why: str = "",
    ) -> ServiceStarted:
        """A deploy job to ``replicas`` replicas (``restart``: all new; ``replace``: these
        new), ``why`` in its log."""
        spec: dict[str, Any] = {
            "service_id": service.id,
            "replicas": replicas,
            "restart": restart,
            "replace": replace or [],
            "why": why,
            "cpus": service.cpus,
            "memory_mb": service.memory_mb,
        }
        version = (
            s.get(ModelVersion, service.model_version_id) if service.model_version_id else None
        )
        if service.runtime == IMAGE_FORMAT:
            # the algorithm's inference image as it is now: a new upload or pull is taken up
            assert service.algorithm_id is not None
            image = inference_image(s, actor, service.algorithm_id)
            service.image_ref = image.image_ref
            settings = image_settings(image)
            spec |= {
                "runtime": IMAGE_FORMAT,
                "image": image.image_ref,
                "command": settings.command,
                "args": settings.args,
                "env": resolve_parameters(settings.env, {}),
                "model_key": version.storage_key if version is not None else None,
            }
        else:
            assert version is not None
            model = s.get_one(Model, version.model_id)
            spec |= {
                "image": service.image_ref,
                "model_key": model_key_for(
                    version.storage_key, formats_key(model.id, version.version), service.format
                ),
                "runtime": service.runtime,
                "model": model.name,
                "version": version.version,
                "signature": version.signature or {},
                "options": service.options,
            }
        job = self.jobs.create(
            s,
            DEPLOY_KIND,
            owner_id=actor.id,
            target_type=TARGET_TYPE,
            target_id=service.id,
            spec=spec,
        )
        service.job_id = job.id
        service.state, service.message = "deploying", f"deploy job {job.id} queued"
        s.flush()
        # with the replicas that run now (a scale from 1 to 2 still serves on r0)
        return ServiceStarted(job_id=job.id, service=self._info(s, service))

    def _info(self, s: Session, row: Service) -> ServiceInfo:
        version = s.get(ModelVersion, row.model_version_id) if row.model_version_id else None
        model = s.get(Model, version.model_id) if version is not None else None
        states = [
            ReplicaInfo(
                index=r.slot,
                run_id=r.run.id,
                state=r.run.state.value,
                port=r.run.ports.get(SERVER_PORT),
                address=r.target,
            )
            for r in service_replicas(self.backend, self.instance, row.id)
        ]
        return from_row(
            ServiceInfo,
            row,
            owner=username_of(s, row.owner_id),
            model=model.name if model else "",
            version=version.version if version else None,
            task_id=version.task_id if version else None,
            dataset_id=version.dataset_id if version else None,
            algorithm_id=row.algorithm_id or (version.algorithm_id if version else None),
            api_spec=api_spec(s, row),
            replica_states=states,
            options=row.options or {},
            address=f"{self.proxy.bind}:{row.port}" if row.port else "",
            # the same endpoint through the Workbench server (its REST API's prefix before)
            relay=f"services/{row.id}/endpoint/",
        )


def _free_port(taken: Collection[int] = ()) -> int:
    """A port free now on this machine and not among ``taken`` (the services' ports): a new
    service's endpoint, kept for its life (unless another process takes it before the
    proxy binds it: :meth:`DeploymentService.publish`)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def _active(s: Session, job_id: int) -> bool:
    job = s.get(Job, job_id)
    return job is not None and job.state in ACTIVE_JOB_STATES
