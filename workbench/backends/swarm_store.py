"""The swarm backend's check of the shared store: which nodes see it.

A swarm's replicas mount folders of the artifact store (a version's files) at the same host
paths as on the docker backend, so a node that takes one must see the store there: one
shared file system (NFS, CephFS, ...) mounted at the same path on every node
(docs/cluster.md). A node without it must get no work, and say why.

The store holds a marker (``.workbench-shared``: a random token, made once). A one-shot task
on every node that takes work (a global job of the image being deployed, as nobody, with a
read-only root) reads it through a bind mount, as replicas mount the store; the nodes that
read the token get the label ``workbench.shared=<token>``, those that do not (the folder is
missing, or holds another store) lose it, and every replica is placed by that label
(:meth:`SharedStore.constraint`). A deploy checks again when the last check is a minute
old, or the nodes changed. ``workbench cluster nodes`` shows the label.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import (
    ContainerSpec,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from docker.types import Mount as SwarmMount

from workbench.backends.base import MANAGED_LABEL
from workbench.backends.docker import engine_errors
from workbench.errors import BackendError

#: the node label of the nodes that see the shared store: its token
SHARED_LABEL = "workbench.shared"
#: the marker file at the store's root
MARKER = ".workbench-shared"
#: how old a check may be before a deploy makes a new one
RECHECK_S = 60.0
#: how long a check's tasks may take
CHECK_TIMEOUT_S = 60.0
#: where a check's task sees the store
_IN_TASK = "/workbench-shared"
_ENDED = {"complete", "failed", "rejected", "shutdown", "orphaned"}


@dataclass(eq=False)
class SharedStore:
    """The shared store at ``path`` on a swarm (see the module doc)."""

    api: docker.APIClient
    path: Path
    #: when the last check ended (monotonic), and the nodes it saw
    checked_at: float = field(default=-RECHECK_S)
    nodes: frozenset[str] = frozenset()

    def token(self) -> str:
        """The store's token, made (once, atomically) if it has none."""
        marker = self.path / MARKER
        try:
            return marker.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        token = secrets.token_hex(16)
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another server made it meanwhile
            return marker.read_text(encoding="ascii").strip()
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
        return token

    def constraint(self, image: str, log: Callable[[str], None]) -> str:
        """The placement constraint that keeps replicas on the nodes that see the store,
        checked again first if the last check is old or the nodes changed."""
        token = self.token()
        with engine_errors():
            nodes = frozenset(n["ID"] for n in self.api.nodes())
        if nodes != self.nodes or time.monotonic() - self.checked_at > RECHECK_S:
            self.check(image, token, log)
        return f"node.labels.{SHARED_LABEL}=={token}"

    def check(self, image: str, token: str, log: Callable[[str], None]) -> dict[str, bool]:
        """Which nodes see the store (node id -> whether it does), their labels set to
        match; a node that took no task (drained, paused, down) keeps its label."""
        script = f'test "$(cat {_IN_TASK}/{MARKER})" = "$0"'
        template = TaskTemplate(
            ContainerSpec(
                image,
                command=["sh", "-c", script, token],
                mounts=[SwarmMount(_IN_TASK, str(self.path), type="bind", read_only=True)],
                user="65534:65534",
                read_only=True,
                cap_drop=["ALL"],
                labels={MANAGED_LABEL: "true"},
            ),
            resources=Resources(cpu_limit=250_000_000, mem_limit=64 << 20),
            restart_policy=RestartPolicy("none"),
        )
        with engine_errors():
            service = self.api.create_service(
                template,
                name=f"workbench-shared-check-{secrets.token_hex(4)}",
                mode=ServiceMode("global-job"),
                labels={MANAGED_LABEL: "true"},
            )["ID"]
        try:
            tasks = self._ended(service)
        finally:
            with suppress(docker.errors.APIError):
                self.api.remove_service(service)
        seen = {t["NodeID"]: t["Status"]["State"] == "complete" for t in tasks}
        codes = {(t["Status"].get("ContainerStatus") or {}).get("ExitCode") for t in tasks}
        if not any(seen.values()) and codes <= {126, 127}:
            raise BackendError(
                f"the check of the shared store could not run in {image}: it needs sh and "
                "cat there. Build the image from the base image, or leave the store "
                "unchecked.",
                image=image,
            )
        self._label(seen, token)
        missing = sorted(node for node, has in seen.items() if not has)
        if missing:
            log(
                f"{len(missing)} node(s) do not see the shared store {self.path} and get no "
                f"replica: {', '.join(missing)} (mount it there: docs/cluster.md)"
            )
        self.checked_at = time.monotonic()
        with engine_errors():
            self.nodes = frozenset(n["ID"] for n in self.api.nodes())
        return seen

    def _ended(self, service: str) -> list[dict[str, Any]]:
        """The check's tasks, once every one has ended."""
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while True:
            with engine_errors():
                tasks: list[dict[str, Any]] = self.api.tasks(filters={"service": service})
            ended = [t for t in tasks if t["Status"]["State"] in _ENDED]
            if tasks and len(ended) == len(tasks):
                return tasks
            if time.monotonic() > deadline:
                raise BackendError(
                    f"the check of the shared store {self.path} did not end in "
                    f"{CHECK_TIMEOUT_S:.0f} s on every node; look at `docker service ps` "
                    "of workbench-shared-check-*.",
                )
            time.sleep(0.3)

    def _label(self, seen: dict[str, bool], token: str) -> None:
        for node_id, has in seen.items():
            with engine_errors():
                node = self.api.inspect_node(node_id)
                labels = dict(node["Spec"].get("Labels") or {})
                if has == (labels.get(SHARED_LABEL) == token):
                    continue
                if has:
                    labels[SHARED_LABEL] = token
                else:
                    labels.pop(SHARED_LABEL, None)
                spec = {**node["Spec"], "Labels": labels}
                self.api.update_node(node_id, node["Version"]["Index"], spec)
