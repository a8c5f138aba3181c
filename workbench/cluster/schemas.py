"""The REST bodies of the cluster area."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

#: ``active``: takes work; ``pause``: keeps what runs, takes nothing new; ``drain``: what
#: runs moves to the other nodes
Availability = Literal["active", "pause", "drain"]


class RunOnNode(BaseModel):
    """One run or replica on a node."""

    kind: Literal["replica", "job", "workspace"]
    #: the id of the service, job or workspace it belongs to
    id: int
    #: ``service cnn, replica 0``, ``training job 12``, ``workspace notebooks``
    name: str
    owner: str


class NodeView(BaseModel):
    """A node as its reader may see it: everyone sees the nodes, and the runs on each that
    are theirs (an admin: all, with their owners); the others are only counted."""

    id: str
    name: str
    role: str
    state: str
    availability: str
    #: where the other nodes reach it ("" where there is none, and for a member)
    address: str
    labels: dict[str, str]
    cpus: float
    memory_mb: int
    gpus: int
    #: what runs it ("" for a member)
    engine: str
    runs: list[RunOnNode]
    #: this server's runs on it that the reader may not see
    others: int


class AvailabilityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    availability: Availability
