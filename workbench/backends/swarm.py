"""The ``swarm`` backend: replicated services as Docker Swarm services, placed, restarted
and rescheduled by the engine.

This is the Docker backend (:mod:`workbench.backends.docker`) on a swarm manager: single
runs (jobs, workspaces) are containers of that engine, as there. A replicated service
(:meth:`Backend.deploy_replicated`) is a Swarm service instead:

- its replicas are its tasks, on an overlay network of Workbench's own (internal unless
  its runs may reach beyond the cluster), reached at their task addresses (endpoint mode
  ``dnsrr``: no routing mesh, which needs IPVS); the data plane reaches them on that
  network;
- readiness is the engine's health check (``GET route`` on the replica's port, tried
  with ``python3``, ``python``, ``wget`` or ``curl``, whichever the image has): a task
  is ``running`` only once it answers, and the engine replaces a task that stops
  answering or exits, on whichever node has room (``heals_replicas``: no watch of
  Workbench's);
- a deploy is a rolling update, one task at a time, the new task started before the old
  one stops (``start-first``); a new task that fails rolls the update back (the engine's
  ``failure_action=rollback``) and the deploy fails with that task's reason and last log
  lines; a new service whose first tasks fail is removed;
- every task is locked down as the docker backend's containers are (all capabilities
  dropped, a read-only root with its tmpfs, its user, CPU, memory and process limits, an
  init, the Docker socket never mounted, a rotated log), with three gaps Swarm's service
  spec leaves: no ``no-new-privileges`` before Engine 25 (the tasks run without
  capabilities and as their user, so a setuid binary gains nothing that counts), no swap
  limit of its own (a node with swap lets a task swap beyond its memory), and an overlay
  network has no switch that keeps its tasks apart (a service's replicas reach one
  another; other services' networks stay apart);
- ``replace`` (slots to replace) is the engine's own business here, and is not needed.

A replica's run id is its task's id (:meth:`SwarmBackend.logs` reads a task's lines from
its service's log, on whichever node it runs); its labels are the service's plus its slot.

Not yet selectable as a server's backend (``get_backend``): the endpoint's proxy runs on
the server's host and does not reach overlay addresses; it moves onto the swarm as a
service next (issue 18, point 4), and jobs and workspaces follow.

Over 600 lines because one backend is one module (as docker.py and local.py are): its
replicated services, their images' way to the nodes, and the nodes themselves.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    Healthcheck,
    NetworkAttachmentConfig,
    Resources,
    RestartPolicy,
    RollbackConfig,
    ServiceMode,
    TaskTemplate,
    UpdateConfig,
)
from docker.types import Mount as SwarmMount
from docker.utils import parse_repository_tag

from workbench.backends.base import (
    MANAGED_LABEL,
    Network,
    NodeInfo,
    Replica,
    ReplicatedSpec,
    Rollout,
    RunInfo,
    RunSpec,
    RunState,
)
from workbench.backends.docker import (
    REMOVE_WHEN_EMPTY,
    DockerBackend,
    check_mount,
    engine_errors,
    follow_errors,
    mount_source,
    split_lines,
)
from workbench.backends.replicated import SLOT_LABEL, TAIL_LINES
from workbench.backends.swarm_store import SHARED_LABEL, SharedStore
from workbench.errors import BackendError, InvalidInput, JobFailed, NotFound

#: the seconds between two of the engine's health checks of a replica, and how many
#: failures in a row make it unhealthy (then replaced)
HEALTH_INTERVAL_S, HEALTH_RETRIES = 1, 3
#: how long the engine watches a new task before it counts the update of its slot as done
UPDATE_MONITOR_S = 2
_NS = 1_000_000_000
#: task states of a task that will not run again
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
#: the network of the tasks that publish a port beside their internal one: the endpoints'
#: proxies (no replica is on it)
EDGE = Network("workbench-edge", outbound=True)
#: an update's states once the engine gave up on it (rolling back, or rolled back)
_ROLLED_BACK = {"rollback_started", "rollback_paused", "rollback_completed", "paused"}
_ROLLING_BACK = {"rollback_started"}


class SwarmBackend(DockerBackend):
    """Replicated services as Swarm services on the manager this client talks to.

    :param registry: ``host:port`` of the image registry every node pulls from
        (``scripts/registry``); None: the nodes run images by id, which only a node that
        holds the image can (a single-node swarm).
    :param shared: the artifact store's folder, which a node must see at that path to take
        a replica (:mod:`workbench.backends.swarm_store`); None: not checked.
    """

    name = "swarm"
    heals_replicas = True

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        registry: str | None = None,
        shared: Path | None = None,
    ) -> None:
        super().__init__(client)
        self.registry = registry
        self._pushing = threading.Lock()
        #: the store every node that takes a replica must see (None: not checked)
        self.shared = SharedStore(self._api, shared) if shared is not None else None

    def deploy_replicated(self, spec: ReplicatedSpec, rollout: Rollout) -> builtins.list[Replica]:
        run = spec.run
        for mount in run.mounts:
            check_mount(mount, self.sockets)
        network = run.network
        if not isinstance(network, Network):
            raise BackendError(
                f"{run.name}: a replicated service on swarm needs a network of Workbench's "
                "(RunSpec.network): its replicas are reached at their addresses on it."
            )
        for joined in _networks(run, network):
            self._ensure_network(joined, driver="overlay")
        image = self._distributed(run.image, rollout)  # before anything changes
        existing = self._service(run.labels)
        old_tasks: set[str] = set()
        if existing is not None:
            with engine_errors():
                old_tasks = {t["ID"] for t in self._api.tasks({"service": existing["ID"]})}
        template = self._task_template(spec, image, network)
        if self.shared is not None:
            constraint = self.shared.constraint(image, rollout.log)
            template["Placement"] = {"Constraints": [constraint]}
        args: dict[str, Any] = {
            "name": run.name,
            "labels": {MANAGED_LABEL: "true", **run.labels},
            "mode": ServiceMode("replicated", replicas=spec.replicas),
            # reached at their task addresses; a port asked for is published on the task's
            # node (host mode: no routing mesh here)
            "endpoint_spec": EndpointSpec(
                mode="dnsrr",
                ports={host: (inside, "tcp", "host") for inside, host in run.ports.items() if host}
                or None,
            ),
            "update_config": UpdateConfig(
                parallelism=1,
                order="start-first",
                failure_action="rollback",
                monitor=UPDATE_MONITOR_S * _NS,
            ),
            "rollback_config": RollbackConfig(parallelism=1, order="start-first"),
        }
        with engine_errors():
            if existing is None:
                rollout.log(f"creating swarm service {run.name} with {spec.replicas} replicas")
                service_id = self._api.create_service(template, **args)["ID"]
            else:
                service_id = existing["ID"]
                force = (existing["Spec"]["TaskTemplate"].get("ForceUpdate") or 0) + rollout.restart
                template["ForceUpdate"] = force
                rollout.log(f"updating swarm service {run.name} to {spec.replicas} replicas")
                self._api.update_service(service_id, existing["Version"]["Index"], template, **args)
        try:
            ready = self._converge(service_id, spec, rollout, existing, old_tasks)
        except BaseException:
            if existing is None:  # nothing served before it: what it started goes
                self._remove_service(service_id, network.name)
            else:  # failed, cancelled or not ready in time: back to the spec before it
                with suppress(BackendError):
                    self._roll_back(service_id, existing)
            raise
        rollout.route([replica.target for replica in ready if replica.target])
        return ready

    def replicas(self, labels: Mapping[str, str], port: int) -> builtins.list[Replica]:
        found = []
        with engine_errors():
            services = self._api.services(filters={"label": _label_filter(labels)})
            for service in services:
                tasks = self._api.tasks(
                    filters={"service": service["ID"], "desired-state": "running"}
                )
                found += [_replica(service, task, port) for task in tasks]
        return sorted(found, key=lambda replica: replica.slot)

    def answers(self, replica: Replica, route: str, within: float = 0.0) -> bool:
        """Whether the engine's health check passes on the replica (a task is running only
        once it does); ``route`` is the one its service checks."""
        deadline = time.monotonic() + within
        while True:
            with suppress(BackendError), engine_errors():
                task = self._api.inspect_task(replica.run.id)
                if task["Status"]["State"] == "running" and task["DesiredState"] == "running":
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def logs(self, run_id: str, *, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        """A run's output; a replica's (``run_id`` is its task's id) from its service's
        log, on whichever node it runs."""
        try:
            task = self._api.inspect_task(run_id)
        except docker.errors.APIError:
            return super().logs(run_id, follow=follow, tail=tail)
        with engine_errors(run=run_id):
            chunks = self._api.service_logs(
                task["ServiceID"],
                details=True,  # each line says its task: the others' are left out
                stdout=True,
                stderr=True,
                follow=follow,
                tail="all" if tail is None else tail,  # a tail of each task's lines
            )
        prefix = f"com.docker.swarm.task.id={run_id}"
        return (
            line.split(" ", 1)[1] if " " in line else ""
            for line in follow_errors(split_lines(chunks), run_id)
            if prefix in line.split(" ", 1)[0]
        )

    def remove_replicated(self, labels: Mapping[str, str]) -> None:
        with engine_errors():
            services = self._api.services(filters={"label": _label_filter(labels)})
        for service in services:
            networks = service["Spec"]["TaskTemplate"].get("Networks") or []
            self._remove_service(service["ID"], *(n["Target"] for n in networks))

    # --- nodes ----------------------------------------------------------------------------

    def nodes(self) -> builtins.list[NodeInfo]:
        """The swarm's nodes, each with the replicas placed on it (and, on the manager this
        backend talks to, the single runs: they are its containers)."""
        with engine_errors():
            nodes = self._api.nodes()
            here = self._api.info()["Swarm"]["NodeID"]
            services = {s["ID"]: s["Spec"].get("Labels") or {} for s in self._api.services()}
            tasks = self._api.tasks()
        runs: dict[str, builtins.list[Mapping[str, str]]] = {n["ID"]: [] for n in nodes}
        for task in tasks:
            labels = services.get(task["ServiceID"], {})
            placed = task["DesiredState"] == "running" and task.get("NodeID") in runs
            if MANAGED_LABEL in labels and placed:
                slot = str(int(task.get("Slot") or 0) - 1)
                runs[task["NodeID"]].append({**labels, SLOT_LABEL: slot})
        # the manager's own running containers but its tasks' (those of every task, by id:
        # not by a label, which an image may carry)
        containers = {(t["Status"].get("ContainerStatus") or {}).get("ContainerID") for t in tasks}
        runs.setdefault(here, []).extend(
            run.labels
            for run in self.list()
            if run.state is RunState.RUNNING and run.id not in containers
        )
        return [_node(node, runs.get(node["ID"], [])) for node in nodes]

    def set_availability(self, node_id: str, availability: str) -> NodeInfo:
        if availability not in ("active", "pause", "drain"):
            raise InvalidInput(
                f"availability is active, pause or drain, not {availability!r}.",
                field="availability",
            )
        with engine_errors():
            try:
                node = self._api.inspect_node(node_id)
            except docker.errors.NotFound as exc:
                raise NotFound(
                    f"the swarm has no node {node_id!r}; list the nodes to find it.",
                    node=node_id,
                ) from exc
            spec = {**node["Spec"], "Availability": availability}
            self._api.update_node(node["ID"], node["Version"]["Index"], spec)
        return next(n for n in self.nodes() if n.id == node["ID"])

    # --- helpers --------------------------------------------------------------------------

    def _distributed(self, ref: str, rollout: Rollout) -> str:
        """The reference every node runs ``ref`` by: its digest in :attr:`registry`, pushed
        there first (what the registry holds already is not sent again), or without a
        registry the image's id. A registry that does not answer fails here, before the
        service changes."""
        with engine_errors(image=ref):
            image_id = str(self._api.inspect_image(ref)["Id"])
        if self.registry is None:
            return image_id
        repository = f"{self.registry}/{_repository_path(ref)}"
        tag = image_id.removeprefix("sha256:")[:24]
        rollout.log(f"pushing {ref} to {repository}:{tag}")
        # one at a time: another deploy's untag must not come between a tag and its push
        with self._pushing:
            digest = self._push(ref, image_id, repository, tag)
        if digest is None:
            raise BackendError(f"the registry {self.registry} gave no digest for {ref}.")
        return f"{repository}@{digest}"

    def _push(self, ref: str, image_id: str, repository: str, tag: str) -> str | None:
        """Push ``image_id`` as ``repository:tag``; its digest there (None if the registry
        gave none). The tag goes again afterwards: the digest names the image."""
        digest = None
        try:
            with engine_errors(image=ref):
                self._api.tag(image_id, repository, tag)
                for event in self._api.push(repository, tag, stream=True, decode=True):
                    if "error" in event:
                        raise BackendError(str(event["error"]))
                    digest = (event.get("aux") or {}).get("Digest") or digest
        except BackendError as exc:
            raise BackendError(
                f"pushing {ref} to the image registry {self.registry} failed: {exc.message}. "
                "The nodes pull every image from it: start it (scripts/registry) or fix "
                "WORKBENCH_REGISTRY_ADDR; services that run are not changed.",
                image=ref,
                registry=self.registry,
            ) from exc
        finally:
            with suppress(docker.errors.APIError):
                self._api.remove_image(f"{repository}:{tag}")
        return digest

    def _service(self, labels: Mapping[str, str]) -> dict[str, Any] | None:
        with engine_errors():
            found = self._api.services(filters={"label": _label_filter(labels)})
        if len(found) > 1:
            names = ", ".join(s["Spec"]["Name"] for s in found)
            raise BackendError(f"more than one swarm service carries {dict(labels)}: {names}")
        return found[0] if found else None

    def _task_template(self, spec: ReplicatedSpec, image: str, network: Network) -> dict[str, Any]:
        run, limits = spec.run, spec.run.limits
        env = dict(run.env)
        mounts = [
            SwarmMount(m.target, mount_source(m), type="bind", read_only=m.read_only)
            for m in run.mounts
        ]
        for target, size_mb in run.tmpfs.items():
            mounts.append(
                SwarmMount(target, None, type="tmpfs", tmpfs_size=size_mb << 20, tmpfs_mode=0o1777)
            )
        if run.read_only_root and run.tmpfs and "HOME" not in env:
            env["HOME"] = next(iter(run.tmpfs))
        container = ContainerSpec(
            image,
            args=list(run.command) if run.command is not None else None,
            env=env,
            workdir=run.workdir,
            user=run.user,
            labels={MANAGED_LABEL: "true", **run.labels},
            mounts=mounts,
            hosts=dict(run.extra_hosts) or None,
            read_only=run.read_only_root,
            init=True,
            cap_drop=["ALL"],
            stop_grace_period=10 * _NS,
            healthcheck=Healthcheck(
                test=["CMD-SHELL", _probe(spec.port, spec.health.route)],
                interval=HEALTH_INTERVAL_S * _NS,
                timeout=3 * _NS,
                retries=HEALTH_RETRIES,
                start_period=round(spec.health.ready_timeout_s * _NS),
            ),
        )
        resources = Resources(
            cpu_limit=round(limits.cpus * 1e9),
            mem_limit=limits.memory_mb << 20,
            cpu_reservation=round(limits.cpus * 1e9),
            mem_reservation=limits.memory_mb << 20,
        )
        resources["Limits"]["Pids"] = limits.pids
        if limits.gpus > 0:
            resources["Reservations"]["GenericResources"] = [
                {"DiscreteResourceSpec": {"Kind": "gpu", "Value": limits.gpus}}
            ]
        template = TaskTemplate(
            container,
            resources=resources,
            restart_policy=RestartPolicy("any", delay=_NS),
            networks=[NetworkAttachmentConfig(n.name) for n in _networks(spec.run, network)],
            log_driver={"Name": "json-file", "Options": {"max-size": "64m", "max-file": "2"}},
        )
        return dict(template)

    def _converge(
        self,
        service_id: str,
        spec: ReplicatedSpec,
        rollout: Rollout,
        before: dict[str, Any] | None,
        old_tasks: set[str],
    ) -> builtins.list[Replica]:
        """The service's replicas once ``spec.replicas`` tasks of its newest spec run (are
        healthy); :class:`JobFailed` when a new task fails (an update is rolled back by the
        engine first) or none is ready in time. ``before``: the service as it was before
        this deploy, None if the deploy created it; ``old_tasks``: the ids of its tasks
        then."""
        old_update = before.get("UpdateStatus") if before is not None else None
        ready_before, failure = -1, None
        # the engine updates one replica at a time: each gets the time one is given
        deadline = time.monotonic() + spec.health.ready_timeout_s * max(1, spec.replicas)
        while True:
            rollout.check()
            with engine_errors():
                service = self._api.inspect_service(service_id)
                tasks = self._api.tasks(filters={"service": service_id})
            template = service["Spec"]["TaskTemplate"]
            newest = [t for t in tasks if _same_template(t["Spec"], template)]
            status = service.get("UpdateStatus")
            update = status.get("State") if status and status != old_update else None
            failed = [
                t
                for t in tasks
                if t["ID"] not in old_tasks and t["Status"]["State"] in ("failed", "rejected")
            ]
            if failed and failure is None:  # read at once: the engine removes it soon
                failure = self._failure(failed[0])
            stuck = [t for t in newest if _unschedulable(t)]
            if stuck and failure is None:  # no node can take it: waiting changes nothing
                failure = _unplaced(stuck[0])
                if before is not None:  # rolled back by the deploy: its old replicas stay
                    raise JobFailed(failure)
            if update in _ROLLED_BACK or (before is None and failure is not None):
                if update in _ROLLING_BACK:
                    time.sleep(0.2)  # the old replicas are coming back: wait for them
                    continue
                message = (status or {}).get("Message", "")
                raise JobFailed(failure or f"the update was rolled back: {message}")
            running = [
                t
                for t in newest
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
            ]
            leaving = [
                t
                for t in tasks
                if t["DesiredState"] != "running" and t["Status"]["State"] not in _ENDED
            ]
            if len(running) != ready_before:
                ready_before = len(running)
                rollout.progress(len(running) / max(1, spec.replicas))
            if len(running) == spec.replicas and not leaving and update != "updating":
                replicas = [_replica(service, t, spec.port) for t in running]
                for replica in replicas:
                    rollout.log(f"replica {replica.slot} ready at {replica.target}")
                return sorted(replicas, key=lambda replica: replica.slot)
            if time.monotonic() > deadline:
                raise JobFailed(
                    f"the replicas did not get ready in time ({len(running)} of "
                    f"{spec.replicas} answer {spec.health.route}); the service was rolled "
                    "back; see their logs"
                )
            time.sleep(0.2)

    def _failure(self, task: dict[str, Any]) -> str:
        """What the deploy's error says of a task that failed: its slot, why, and its last
        log lines."""
        status = task["Status"]
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        why = f"exited with {code}" if code else status.get("Err") or status["State"]
        lines: builtins.list[str] = []
        with suppress(BackendError):
            lines = builtins.list(self.logs(task["ID"], tail=TAIL_LINES))
        slot = int(task.get("Slot") or 1) - 1
        return f"replica {slot} {why} before it was ready; its last log lines:\n" + "\n".join(lines)

    def _roll_back(self, service_id: str, before: dict[str, Any]) -> None:
        """Put the service back to its spec ``before`` this deploy."""
        spec = before["Spec"]
        with engine_errors():
            version = self._api.inspect_service(service_id)["Version"]["Index"]
            self._api.update_service(
                service_id,
                version,
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode=spec.get("Mode"),
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"),
            )

    def _remove_service(self, service_id: str, *networks: str) -> None:
        """Remove the service (gone already: nothing to do) and its networks that go with
        their last service (once its tasks have left them: :meth:`_drop_unused_overlay`
        waits for that)."""
        with engine_errors(), suppress(docker.errors.NotFound):
            self._api.remove_service(service_id)
        for network in networks:
            self._drop_unused_overlay(network)

    def _drop_unused_overlay(self, name: str) -> None:
        """Remove the overlay network ``name`` (or id) if it goes with its last service and
        no service uses it; best effort (the engine may still be detaching a task, and a
        deploy joining it meanwhile keeps it)."""
        with self._networks_lock, suppress(docker.errors.APIError):
            attrs = self._api.inspect_network(name)
            if (attrs.get("Labels") or {}).get(REMOVE_WHEN_EMPTY) != "true":
                return
            for service in self._api.services():
                targets = service["Spec"]["TaskTemplate"].get("Networks") or []
                if any(n.get("Target") in (attrs["Id"], attrs["Name"]) for n in targets):
                    return
            deadline = time.monotonic() + 60  # its tasks' containers leave it first
            while True:
                try:
                    self._api.remove_network(attrs["Id"])
                    return
                except docker.errors.APIError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)


def _node(node: Mapping[str, Any], runs: builtins.list[Mapping[str, str]]) -> NodeInfo:
    description, status = node.get("Description") or {}, node.get("Status") or {}
    resources = description.get("Resources") or {}
    gpus = sum(
        int((r.get("DiscreteResourceSpec") or {}).get("Value") or 0)
        for r in resources.get("GenericResources") or []
        if (r.get("DiscreteResourceSpec") or {}).get("Kind") == "gpu"
    )
    return NodeInfo(
        id=str(node["ID"]),
        name=str(description.get("Hostname", "")),
        role=str(node["Spec"].get("Role", "worker")),
        state=str(status.get("State", "unknown")),
        availability=str(node["Spec"].get("Availability", "active")),
        address=status.get("Addr"),
        labels=dict(node["Spec"].get("Labels") or {}),
        cpus=int(resources.get("NanoCPUs") or 0) / 1e9,
        memory_bytes=int(resources.get("MemoryBytes") or 0),
        gpus=gpus,
        engine=f"Docker {(description.get('Engine') or {}).get('EngineVersion', '')}".strip(),
        runs=tuple(runs),
    )


def _networks(run: RunSpec, network: Network) -> builtins.list[Network]:
    """The networks of a service's tasks: its own, and where it publishes a port and its own
    is internal, :data:`EDGE` too (the engine publishes a port only for a task on a
    network that reaches beyond the host)."""
    publishes = any(host for host in run.ports.values())
    return [network, EDGE] if publishes and not network.outbound else [network]


def _same_template(task: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    """Whether a task was made from ``template`` (the engine writes ``Runtime`` into the
    service's template only)."""
    return {k: v for k, v in task.items() if k != "Runtime"} == {
        k: v for k, v in template.items() if k != "Runtime"
    }


def _repository_path(ref: str) -> str:
    """``ref``'s repository without any registry host (``workbench/env-python``), or
    ``workbench/image`` for an image given by id."""
    if ref.startswith("sha256:"):
        return "workbench/image"
    repository, _ = parse_repository_tag(ref)
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        repository = rest
    return repository.lower()


def _unschedulable(task: Mapping[str, Any]) -> bool:
    """Whether the scheduler found no node for ``task`` (too much memory or CPU asked, a
    GPU no node has, a label no node carries, a platform no node runs)."""
    status = task["Status"]
    return status["State"] == "pending" and "no suitable node" in (status.get("Err") or "")


def _unplaced(task: Mapping[str, Any]) -> str:
    slot = int(task.get("Slot") or 1) - 1
    return (
        f"replica {slot} cannot run on any node of the swarm: {task['Status']['Err']}. Ask for "
        "less memory or fewer CPUs, or add a node that has them (and, where the shared store "
        f"is checked, sees it: the nodes labelled {SHARED_LABEL})."
    )


def _label_filter(labels: Mapping[str, str]) -> builtins.list[str]:
    return [f"{key}={value}" for key, value in labels.items()]


def _probe(port: int, route: str) -> str:
    """A shell command that exits 0 when ``GET route`` on ``port`` answers 2xx, with
    whichever HTTP client the image has."""
    url = f"http://127.0.0.1:{port}{route}"
    python = f"import urllib.request as u; u.urlopen('{url}', timeout=2)"
    return (
        f'python3 -c "{python}" 2>/dev/null || python -c "{python}" 2>/dev/null || '
        f"wget -q -O /dev/null {url} 2>/dev/null || curl -fsS -o /dev/null {url}"
    )


def _replica(service: dict[str, Any], task: dict[str, Any], port: int) -> Replica:
    """A task of ``service`` as a replica: its run's id is the task's id."""
    status = task["Status"]
    state = {
        "running": RunState.RUNNING,
        "new": RunState.CREATED,
        "pending": RunState.CREATED,
        "assigned": RunState.CREATED,
        "accepted": RunState.CREATED,
        "preparing": RunState.CREATED,
        "ready": RunState.CREATED,
        "starting": RunState.CREATED,
    }.get(status["State"], RunState.EXITED)
    address = next(
        (
            attachment["Addresses"][0].split("/")[0]
            for attachment in task.get("NetworksAttachments") or []
            if attachment.get("Addresses")
        ),
        None,
    )
    slot = int(task.get("Slot") or 0) - 1
    labels = {**(service["Spec"].get("Labels") or {}), SLOT_LABEL: str(slot)}
    healthy = state is RunState.RUNNING
    run = RunInfo(
        id=task["ID"],
        name=f"{service['Spec']['Name']}.{slot + 1}.{task['ID']}",
        state=state,
        exit_code=(status.get("ContainerStatus") or {}).get("ExitCode") if not healthy else None,
        ports={},
        labels=labels,
        address=address if healthy else None,
    )
    return Replica(slot, run, f"{address}:{port}" if healthy and address else None)
