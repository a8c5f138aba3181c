"""The cluster's nodes (``workbench cluster``): the machines the backend places runs on,
with their labels, resources and state, and what of this server's runs on each; an admin
drains a node (its replicas move to the others, placed by the engine) or takes it back.

A backend without nodes (docker, local) has one: its engine or host, which cannot be
drained. What runs is told by the labels Workbench sets on its runs (a service's replica,
a job, a workspace): a reader sees the ones they own (an admin: all), the others only
counted, as the runs of another server on the same engine are not listed at all."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

from sqlalchemy.orm import Session

from workbench.backends.base import MANAGED_LABEL, NodeInfo, OnBackend
from workbench.backends.replicated import SLOT_LABEL
from workbench.cluster.schemas import Availability, NodeView, RunOnNode
from workbench.deployments.jobs import SERVICE_LABEL
from workbench.enums import Role
from workbench.errors import PermissionDenied
from workbench.jobs.runner import JOB_LABEL
from workbench.registry.db import Registry
from workbench.registry.models import Job, Service, Workspace
from workbench.users import Actor, username_of
from workbench.workspaces.service import WORKSPACE_LABEL


@dataclass(eq=False)
class ClusterService(OnBackend):
    registry: Registry
    _: KW_ONLY
    #: this server's name on its runs (``workbench.managed``)
    instance: str

    def nodes(self, actor: Actor) -> list[NodeView]:
        """Every node, with what of the reader's runs on it."""
        nodes = self.backend.nodes()
        with self.registry.session() as s:
            return [self._view(s, actor, node) for node in nodes]

    def set_availability(self, actor: Actor, node_id: str, availability: Availability) -> NodeView:
        """Drain a node (what runs moves elsewhere), pause it or make it active again:
        admins only."""
        if actor.role != Role.ADMIN:
            raise PermissionDenied(
                "Only an admin drains, pauses or activates a node; ask one.", node=node_id
            )
        node = self.backend.set_availability(node_id, availability)
        with self.registry.session() as s:
            return self._view(s, actor, node)

    def _view(self, s: Session, actor: Actor, node: NodeInfo) -> NodeView:
        """The node as ``actor`` may see it: a member gets neither its address nor its
        engine's version (of use only to one who would attack it), and only counts of the
        others' runs."""
        admin = actor.role == Role.ADMIN
        runs, others = [], 0
        for labels in node.runs:
            if labels.get(MANAGED_LABEL) != self.instance:
                continue  # another server's: not this one's to tell
            run = _run(s, labels)
            if run is None:
                continue
            found, owner_id = run
            if admin or owner_id == actor.id:
                runs.append(found)
            else:
                others += 1
        return NodeView(
            id=node.id,
            name=node.name,
            role=node.role,
            state=node.state,
            availability=node.availability,
            address=(node.address or "") if admin else "",
            labels=dict(node.labels),
            cpus=node.cpus,
            memory_mb=node.memory_bytes >> 20,
            gpus=node.gpus,
            engine=node.engine if admin else "",
            runs=sorted(runs, key=lambda r: (r.kind, r.id, r.name)),
            others=others,
        )


#: what a run is, told by a label Workbench sets on it: the label, the row it names, the
#: run's kind, and its name
_KINDS: tuple[
    tuple[str, type[Service | Job | Workspace], str, Callable[[Any, Mapping[str, str]], str]], ...
] = (
    (
        SERVICE_LABEL,
        Service,
        "replica",
        lambda row, labels: f"service {row.name}, replica {labels.get(SLOT_LABEL, '?')}",
    ),
    (JOB_LABEL, Job, "job", lambda row, labels: f"{row.kind} job {row.id}"),
    (WORKSPACE_LABEL, Workspace, "workspace", lambda row, labels: f"workspace {row.name}"),
)


def _run(s: Session, labels: Mapping[str, str]) -> tuple[RunOnNode, int] | None:
    """What a run with these labels is, and its owner's id; None for a run of a row that is
    gone (being removed) or of no kind Workbench runs."""
    for label, model, kind, name in _KINDS:
        if label not in labels:
            continue
        value = labels[label]
        row = s.get(model, int(value)) if re.fullmatch(r"[0-9]{1,18}", value) else None
        if row is None:
            return None
        owner = username_of(s, row.owner_id)
        return RunOnNode(kind=kind, id=row.id, name=name(row, labels), owner=owner), row.owner_id
    return None
