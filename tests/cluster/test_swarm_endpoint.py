"""A service's endpoint on the local three-node swarm: its HAProxy as a Swarm service of its
own on the service's overlay network, publishing the endpoint's port on its node, asking for
the key, balancing over the replicas it finds by DNS and following a scale without a
reload (issue 18, point 4: not yet wired into the services)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import served
from tests.conftest import until
from tests.docker_fixtures import LocalSwarm
from workbench.backends.base import Network, Rollout
from workbench.backends.docker import DockerBackend
from workbench.backends.swarm import SwarmBackend
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.deployments.proxy import Endpoint
from workbench.deployments.swarm_proxy import configure, proxy_image, proxy_spec
from workbench.users import hash_token

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROLLOUT = Rollout(lambda targets: None)
#: each replica answers /who with its own name
WHO = "hostname > /tmp/who && cd /tmp && exec python3 -m http.server 8000"


def test_an_endpoint_on_the_swarm_asks_for_its_key_and_follows_its_replicas(
    local_swarm: LocalSwarm, base_image: str, tmp_path: Path
) -> None:
    image = proxy_image(DockerBackend.from_env(), DEFAULT_BASE_IMAGE)  # the main engine's
    local_swarm.load(image)
    local_swarm.load(base_image)
    name = uuid.uuid4().hex[:12]
    store = local_swarm.shared / name
    folder = store / "services" / "1" / "proxy"
    folder.mkdir(parents=True)
    swarm = SwarmBackend(local_swarm.client(), registry=local_swarm.registry, shared=store)
    replicas = served(base_image, ("sh", "-c", WHO))
    run, network = replicas.run, replicas.run.network
    assert isinstance(network, Network)
    secret = f"wbsk_{uuid.uuid4().hex}"
    port = random.randint(20000, 29999)
    endpoint = Endpoint(
        1, "spread", port, (), "/", key_hash=hash_token(secret), dns=f"tasks.{run.name}:8000"
    )
    proxy = proxy_spec(
        endpoint, image=image, folder=folder, network=network, labels={"wbtest.proxy": name}
    )
    manager = local_swarm.client()
    try:
        swarm.deploy_replicated(replicas, ROLLOUT)
        configure(folder, endpoint, relay_hash=hash_token("the relay's"))
        (task,) = swarm.deploy_replicated(proxy, ROLLOUT)
        node = manager.api.inspect_node(manager.api.inspect_task(task.run.id)["NodeID"])
        url = f"http://{node['Status']['Addr']}:{port}/who"
        keyed = {"Authorization": f"Bearer {secret}"}

        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 401 and "needs its key" in refused.text

        def names(count: int) -> set[str]:
            answers = [httpx.get(url, headers=keyed, timeout=5) for _ in range(count)]
            assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
            return {a.text.strip() for a in answers}

        until(lambda: len(names(30)) == 3, 30, 0.5)  # all three found by DNS

        # scale 3 -> 1 while a client keeps asking: no request fails (the proxy sends one
        # that meets a replica going away to another)
        stop, failed, answered = threading.Event(), [], [0]

        def load() -> None:
            with httpx.Client(headers=keyed, timeout=5) as client:
                while not stop.is_set():
                    try:
                        reply = client.get(url)
                    except httpx.HTTPError as exc:
                        failed.append(repr(exc))
                        continue
                    if reply.status_code == 200:
                        answered[0] += 1
                    else:
                        failed.append(f"{reply.status_code} {reply.text[:200]}")

        loader = threading.Thread(target=load)
        loader.start()
        try:
            swarm.deploy_replicated(replace(replicas, replicas=1), ROLLOUT)
            started = time.monotonic()
            until(lambda: len(names(10)) == 1, 30, 0.5)  # the scale followed, no reload
        finally:
            stop.set()
            loader.join()
        print(
            f"the endpoint followed a scale from 3 to 1 in {time.monotonic() - started:.1f} s; "
            f"{answered[0]} requests answered meanwhile, {len(failed)} failed"
        )
        assert answered[0] > 20 and failed == []
    finally:
        swarm.remove_replicated(proxy.run.labels)
        swarm.remove_replicated(run.labels)
