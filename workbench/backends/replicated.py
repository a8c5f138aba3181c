"""Replicated services made of single runs: the contract's replicated services
(:meth:`Backend.deploy_replicated`) on any backend that runs containers or processes one by
one (docker, local, fake).

A replica is a run of the service's :class:`RunSpec` named ``<name>-<slot>-<6 hex>`` and
labelled with its slot (:data:`SLOT_LABEL`). A deploy:

1. sorts the replicas there are: one gone, exited, of a slot past the number asked, a second
   of its slot, or to replace goes; the others are kept if they answer their health route
   within :attr:`HealthCheck.kept_grace_s` (a hung one is replaced);
2. removes the ones that no longer run at once, and starts a new replica for each slot
   without a kept one;
3. waits until every replica answers (a replica that exits, restarts or is not ready in
   :attr:`HealthCheck.ready_timeout_s` fails the deploy with its last log lines, and what
   the deploy started is removed: the replicas before it serve on);
4. routes the traffic to the replicas it keeps, lets the others answer what they were sent
   for :data:`DRAIN_S`, then stops and removes them.

A change of replicas drops no request. The engine's restart policy starts a crashed replica
again; nothing here places, reschedules or replaces replicas on its own (``heals_replicas``
is False: Workbench's services watch does that).
"""

from __future__ import annotations

import builtins
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import replace as replaced

from workbench.backends.base import (
    Backend,
    Replica,
    ReplicatedSpec,
    Rollout,
    RunInfo,
    RunSpec,
    RunState,
)
from workbench.errors import JobFailed

#: the label that holds a replica's slot (its index, 0 to replicas - 1)
SLOT_LABEL = "workbench.replica"
#: how long a replica taken out of the traffic still gets to answer what it was sent
DRAIN_S = 1.0
#: how many of a failed replica's last log lines the deploy's error quotes
TAIL_LINES = 20


class RunReplicas(Backend):
    """Replicated services as single runs (see the module doc); a backend mixes it in."""

    def deploy_replicated(self, spec: ReplicatedSpec, rollout: Rollout) -> builtins.list[Replica]:
        kept: dict[int, Replica] = {}
        doomed: builtins.list[Replica] = []
        for replica in self.replicas(spec.run.labels, spec.port):
            alive = replica.run.state == RunState.RUNNING and replica.slot not in rollout.replace
            wanted = 0 <= replica.slot < spec.replicas and replica.slot not in kept
            if not alive or rollout.restart or not wanted:
                doomed.append(replica)
            else:
                kept[replica.slot] = replica
        for replica in doomed:  # the dead go at once; the others serve until replaced
            if replica.run.state != RunState.RUNNING:
                rollout.log(f"removing replica {replica.slot} ({replica.run.state})")
                self.remove(replica.run.id)
        doomed = [replica for replica in doomed if replica.run.state == RunState.RUNNING]
        route = spec.health.route
        for slot, replica in sorted(kept.items()):  # a kept replica must answer (not hung)
            if not self.answers(replica, route, within=spec.health.kept_grace_s):
                rollout.log(f"replica {slot} does not answer {route}: replaced")
                doomed.append(kept.pop(slot))
        started: builtins.list[RunInfo] = []
        try:
            for slot in range(spec.replicas):
                if slot not in kept:
                    rollout.check()
                    rollout.log(f"starting replica {slot}")
                    run = self.run(_replica_run(spec, slot))
                    started.append(run)
                    kept[slot] = Replica(slot, run, _target(run, spec.port))
            for done, slot in enumerate(sorted(kept)):
                kept[slot] = self._wait_ready(spec, kept[slot], rollout)
                rollout.progress((done + 1) / max(1, spec.replicas))
        except BaseException:
            for run in started:  # what this deploy started and did not get ready goes
                self.stop(run.id, timeout=5)
                self.remove(run.id)
            raise
        ready = [kept[slot] for slot in sorted(kept)]
        rollout.route([replica.target for replica in ready if replica.target])
        if doomed:
            time.sleep(DRAIN_S)  # the proxy's old workers finish what they sent them
        for replica in doomed:
            rollout.log(f"removing replica {replica.slot}")
            self.stop(replica.run.id, timeout=10)
            self.remove(replica.run.id)
        return ready

    def replicas(self, labels: Mapping[str, str], port: int) -> builtins.list[Replica]:
        runs = self.list(labels)
        return sorted(
            (Replica(_slot(run), run, _target(run, port)) for run in runs),
            key=lambda replica: replica.slot,
        )

    def answers(self, replica: Replica, route: str, within: float = 0.0) -> bool:
        if replica.target is None:
            return False
        url = f"http://{replica.target}{route}"
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

    def remove_replicated(self, labels: Mapping[str, str]) -> None:
        for run in self.list(labels):
            self.stop(run.id, timeout=10)
            self.remove(run.id)

    def _wait_ready(self, spec: ReplicatedSpec, replica: Replica, rollout: Rollout) -> Replica:
        """``replica`` once it answers its health route (see the module doc)."""
        deadline = time.monotonic() + spec.health.ready_timeout_s
        while True:
            rollout.check()
            info = self.status(replica.run.id)
            now = Replica(replica.slot, info, _target(info, spec.port))
            if info.state != RunState.RUNNING or info.restarts:
                last = builtins.list(self.logs(info.id, tail=TAIL_LINES))
                why = (
                    "ran out of memory"
                    if info.oom_killed
                    else f"exited with {info.exit_code}"
                    if info.exit_code is not None
                    else "exited"
                )
                raise JobFailed(
                    f"replica {replica.slot} {why} before it was ready; its last log lines:\n"
                    + "\n".join(last)
                )
            if self.answers(now, spec.health.route):
                rollout.log(f"replica {replica.slot} ready at {now.target}")
                return now
            if time.monotonic() > deadline:
                raise JobFailed(
                    f"replica {replica.slot} did not get ready in "
                    f"{spec.health.ready_timeout_s:.0f} s; see its log"
                )
            time.sleep(0.2)


def _replica_run(spec: ReplicatedSpec, slot: int) -> RunSpec:
    """The run of ``spec``'s replica in ``slot``."""
    return replaced(
        spec.run,
        name=f"{spec.run.name}-{slot}-{uuid.uuid4().hex[:6]}",
        labels={**spec.run.labels, SLOT_LABEL: str(slot)},
    )


def _slot(run: RunInfo) -> int:
    """A replica's slot, from its label (-1: a run of the service's labels without one)."""
    try:
        return int(run.labels.get(SLOT_LABEL, "-1"))
    except ValueError:
        return -1


def _target(run: RunInfo, port: int) -> str | None:
    """``host:port`` where this host reaches a running replica's server: its own address on
    its network, so that no port-publishing proxy of the engine is in the path (Docker's
    costs a quarter of the endpoint's throughput, measured with ``benchmarks/serving.py``);
    from a backend that gives none, ``port`` as published on 127.0.0.1."""
    if run.state != RunState.RUNNING:
        return None
    if run.address:
        return f"{run.address}:{port}"
    published = run.ports.get(port)
    return f"127.0.0.1:{published}" if published else None
