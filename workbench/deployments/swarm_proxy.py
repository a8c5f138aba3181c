"""A service's endpoint on a swarm: its own HAProxy as a Swarm service, beside its replicas.

A swarm's replicas live on their service's overlay network, which the server's host does
not reach, so the endpoint moves onto the swarm: one proxy task per service, of an image
built from the local base image with Debian's HAProxy (``proxy_image/``), on the service's
network, publishing the endpoint's port on its node (host mode: this kernel has no routing
mesh). It finds the replicas by DNS (``tasks.<service>``, Docker's resolver, asked every
second), so the engine's moves and a scale need no reload; its configuration and key map
(:func:`workbench.deployments.proxy.render`, the same key check as on one machine) sit in
a folder of the shared store that the task mounts read-only, and ``run-proxy`` reloads
HAProxy when they change (a key rotated). The engine restarts and places it; stopping the
Workbench server stops no endpoint, and a new server finds it by its labels.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from workbench.backends.base import (
    Backend,
    HealthCheck,
    Mount,
    Network,
    ReplicatedSpec,
    RunSpec,
)
from workbench.deployments.proxy import GENERATION_PATH, Endpoint, key_map, render
from workbench.errors import ImageNotFound

#: the proxy image's build context
CONTEXT = Path(__file__).parent / "proxy_image"
#: where the proxy task sees its folder
IN_TASK = "/etc/workbench-proxy"
#: the label of a proxy task's service: the id of the service whose endpoint it is
ENDPOINT_LABEL = "workbench.endpoint"


def proxy_image(backend: Backend, base: str) -> str:
    """The proxy image's tag, built from ``base`` if this engine has none of its content."""
    digest = hashlib.sha256(base.encode())
    for name in sorted(p.name for p in CONTEXT.iterdir()):
        digest.update((CONTEXT / name).read_bytes())
    tag = f"workbench/proxy:{digest.hexdigest()[:12]}"
    try:
        backend.inspect_image(tag)
    except ImageNotFound:
        for _ in backend.build_image(CONTEXT, tag, build_args={"BASE": base}):
            pass
    return tag


def configure(folder: Path, endpoint: Endpoint, relay_hash: str) -> None:
    """Write the endpoint's configuration and key map into ``folder`` (only their owner
    reads them; the task runs as that owner), each whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = Path(IN_TASK) / "keys.map"
    config = render([endpoint], "0.0.0.0", Path("/tmp/haproxy.pid"), str(time.time_ns()), keys)
    for name, text in (("keys.map", key_map([endpoint], relay_hash)), ("haproxy.cfg", config)):
        path, tmp = folder / name, folder / f"{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)


def proxy_spec(
    endpoint: Endpoint,
    *,
    image: str,
    folder: Path,
    network: Network,
    labels: dict[str, str],
) -> ReplicatedSpec:
    """The proxy of ``endpoint`` as a replicated service of one task on ``network`` (the
    service's), publishing the endpoint's port on its node, as the folder's owner."""
    run = RunSpec(
        name=f"{network.name}-proxy",
        image=image,
        mounts=(Mount(folder, IN_TASK, read_only=True),),
        ports={endpoint.port: endpoint.port},
        labels={**labels, ENDPOINT_LABEL: str(endpoint.service_id)},
        user=f"{folder.stat().st_uid}:{folder.stat().st_gid}",
        network=network,
        read_only_root=True,
        tmpfs={"/tmp": 16},
    )
    return ReplicatedSpec(run, 1, endpoint.port, HealthCheck(GENERATION_PATH))
