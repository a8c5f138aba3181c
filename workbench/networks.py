"""The network each kind of run gets (issue 15: no run reaches another user's runs).

- Model imports, conversions and benchmarks load files users brought and need nothing
  outside: :data:`NO_NETWORK`.
- Training runs share ``workbench-jobs``, and workspaces ``workbench-workspaces``: runs on
  them never reach one another (inter-container traffic off), and reach beyond this host
  only where a setting allows (``WORKBENCH_TRAINING_OUTBOUND``,
  ``WORKBENCH_WORKSPACE_OUTBOUND``); the network with outbound access has its own name
  (``...-outbound``), so servers of either setting share an engine.
- A service's replicas sit on a network of their own (``workbench-svc-<server>-<id>``,
  internal), which only the proxy on this host reaches; it goes with the last replica.

What any networked run still reaches is this host's own addresses (Docker filters what
it forwards, not what the host receives): the Workbench API for workspaces, on the
bridge's gateway, and whatever else listens beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib

from workbench.backends.base import NO_NETWORK, Network

__all__ = ["NO_NETWORK", "SCRATCH", "jobs_network", "service_network", "workspaces_network"]

#: the in-memory scratch of a run with a read-only root: path -> MiB (counted in its memory)
SCRATCH = {"/tmp": 256}


def jobs_network(outbound: bool) -> Network:
    """The network of training runs (and other jobs that run a user's image)."""
    return Network("workbench-jobs-outbound" if outbound else "workbench-jobs", outbound)


def workspaces_network(outbound: bool) -> Network:
    """The network of workspaces."""
    return Network(
        "workbench-workspaces-outbound" if outbound else "workbench-workspaces", outbound
    )


def service_network(instance: str, service_id: int) -> Network:
    """The network of one service's replicas; ``instance`` (the server's name) keeps apart
    the services of servers that share an engine, whose ids are the same."""
    server = hashlib.sha256(instance.encode()).hexdigest()[:8]
    return Network(f"workbench-svc-{server}-{service_id}", remove_when_empty=True, owner=instance)
