"""No run reaches another user's runs (issue 15, point 3). Before, every container shared
Docker's default bridge: bob's model import called alice's private service replica at its
container address (172.17.0.x:8080) and got its answer.

Each test names its attack and asserts the safe outcome, and where there is one, that the
legitimate path still works: this host (HAProxy, the workspace proxy, kernels) reaches the
runs at their addresses, and a workspace reaches the Workbench API on the host's gateway.
The runs are made the way the kinds make them: the import through REST, replicas,
training runs and workspaces with the networks of :mod:`workbench.networks`.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.security.conftest import API, Tenants
from tests.security.test_container_output import bob_imports, hostile_pickle
from workbench.backends.base import Network, RunInfo, RunSpec, RunState
from workbench.backends.docker import DockerBackend
from workbench.models.jobs import JOB_DIR
from workbench.networks import SCRATCH, jobs_network, service_network, workspaces_network

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PORT = 8080
#: a small HTTP server that says who it is: a replica, a workspace (GET / answers NAME)
SERVE = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['NAME'].encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    f"http.server.ThreadingHTTPServer(('0.0.0.0', {PORT}), H).serve_forever()\n"
)
#: run in a container (python -c, a prelude before it): connect to each target, try writes
PROBE = """
import errno, json, os, socket
seen = {"home": os.environ.get("HOME", "")}
for target in TARGETS:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            answer = s.makefile("rb").read().decode(errors="replace")
            seen[target] = answer.split("\\r\\n\\r\\n")[-1]
    except OSError as exc:
        seen[target] = "refused: " + type(exc).__name__
seen["interfaces"] = sorted(os.listdir("/sys/class/net"))
for name, path in WRITES.items():
    try:
        with open(path, "w") as f:
            f.write("x")
        seen[name] = "written"
    except OSError as exc:
        seen[name] = errno.errorcode.get(exc.errno, str(exc.errno))
print("SEEN " + json.dumps(seen), flush=True)
"""
#: where a run with a read-only root tries to write: the image's root, its Python (owned
#: by the run's user in the environment images: writable before), /etc, and its scratch
WRITES = {"root": "/x", "venv": "/opt/venv/x", "etc": "/etc/x", "tmp": "/tmp/x"}


def probe_code(targets: list[str], writes: dict[str, str]) -> str:
    return f"TARGETS = {targets!r}\nWRITES = {writes!r}\n" + PROBE


def seen_in(lines: list[str]) -> dict[str, object]:
    line = next(x for x in lines if "SEEN " in x)
    return json.loads(line.split("SEEN ", 1)[1])


class Runs:
    """Containers made the way the kinds make them, removed at the end (with the
    per-service networks, which go with their last run)."""

    def __init__(self, backend: DockerBackend, image: str) -> None:
        self.backend, self.image, self.made = backend, image, []

    def serve(self, name: str, network: Network, **fields: object) -> RunInfo:
        """A server answering ``name`` on :data:`PORT`, ready, on ``network``."""
        run = self._run(name, ("python", "-c", SERVE), network, env={"NAME": name}, **fields)
        deadline = time.monotonic() + 30
        while not run.address or answer(f"{run.address}:{PORT}") != name:
            assert time.monotonic() < deadline, f"{name} does not answer: {run}"
            time.sleep(0.2)
            run = self.backend.status(run.id)
        return run

    def probe(self, network: Network, *targets: str) -> dict[str, object]:
        """What a run on ``network`` gets from each target, and where it could write."""
        code = probe_code(list(targets), WRITES)
        run = self._run("probe", ("python", "-c", code), network)
        deadline = time.monotonic() + 60
        while (info := self.backend.status(run.id)).state is RunState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        lines = list(self.backend.logs(run.id))
        assert info.exit_code == 0, lines
        return seen_in(lines)

    def _run(
        self, what: str, command: tuple[str, ...], network: Network, **fields: object
    ) -> RunInfo:
        spec = RunSpec(
            name=f"wbtest-net-{what}-{uuid.uuid4().hex[:6]}",
            image=self.image,
            command=command,
            network=network,
            user="1000:1000",
            read_only_root=True,
            tmpfs=SCRATCH,
            **fields,  # type: ignore[arg-type]
        )
        self.made.append(spec.name)
        return self.backend.run(spec)

    def cleanup(self) -> None:
        for name in self.made:
            self.backend.remove(name)


def answer(target: str) -> str:
    """What this host gets from ``target`` (host:port), or why not."""
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.makefile("rb").read().decode(errors="replace").split("\r\n\r\n")[-1]
    except OSError as exc:
        return f"refused: {type(exc).__name__}"


@pytest.fixture
def runs(docker_backend: DockerBackend, python_env_image: str) -> Iterator[Runs]:
    made = Runs(docker_backend, python_env_image)
    yield made
    made.cleanup()


def network_exists(name: str) -> bool:
    try:
        docker.from_env().networks.get(name)
    except docker.errors.NotFound:
        return False
    return True


def refused(seen: dict[str, object], targets: list[str]) -> bool:
    return all(str(seen[t]).startswith("refused") for t in targets)


def test_replicas_reach_no_other_service_nor_their_own_siblings(runs: Runs) -> None:
    """Attack: an inference image (bob's service) calls alice's replicas, and one replica
    of a service calls its sibling. Safe: nothing answers them; this host (HAProxy) reaches
    every replica at its address. The service networks go with their last replica."""
    server = f"test-{uuid.uuid4().hex[:8]}"
    alice_net, bob_net = service_network(server, 1), service_network(server, 2)
    alice = [runs.serve(f"alice-{i}", alice_net) for i in range(2)]
    bob = runs.serve("bob-0", bob_net)
    targets = [f"{run.address}:{PORT}" for run in (*alice, bob)]

    assert [answer(t) for t in targets] == ["alice-0", "alice-1", "bob-0"]  # the proxy's path
    assert refused(runs.probe(bob_net, *targets[:2]), targets[:2])
    assert refused(runs.probe(alice_net, *targets[1:]), targets[1:])

    runs.cleanup()
    assert not network_exists(alice_net.name) and not network_exists(bob_net.name)


def test_training_runs_and_workspaces_reach_no_replica_nor_each_other(
    runs: Runs, docker_backend: DockerBackend
) -> None:
    """Attack: bob's training run (the shared jobs network) and bob's workspace (the shared
    workspaces network, with or without outbound access) call alice's replica, alice's
    workspace and alice's training run. Safe: nothing answers; this host reaches the
    workspace (the workspace proxy's and the kernels' path), and a workspace reaches the
    host's gateway, where the server's API listens for workspaces."""
    replica = runs.serve("alice-replica", service_network(f"test-{uuid.uuid4().hex[:8]}", 1))
    workspace = runs.serve("alice-workspace", workspaces_network(True))
    training = runs.serve("alice-training", jobs_network(False))
    targets = [f"{run.address}:{PORT}" for run in (replica, workspace, training)]
    assert answer(targets[1]) == "alice-workspace"  # the workspace proxy's path

    for network in (jobs_network(False), workspaces_network(True), workspaces_network(False)):
        assert refused(runs.probe(network, *targets), targets), network

    # like the server's listener for workspaces (workbench_ext.app), on the bridge's gateway
    api = http.server.ThreadingHTTPServer((docker_backend.host_gateway(), 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        where = "{}:{}".format(*api.server_address)
        for network in (workspaces_network(True), workspaces_network(False)):
            assert runs.probe(network, where)[where] == "workbench api", network
    finally:
        api.shutdown()
        api.server_close()


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(b"workbench api")


def test_a_job_with_a_read_only_root_writes_only_its_scratch(runs: Runs) -> None:
    """Attack: a training run's code rewrites the image's Python or /etc for what runs
    next in its container. Safe: the root is read-only; the legitimate path, scratch in
    /tmp (a size-limited tmpfs, HOME there), still works."""
    seen = runs.probe(jobs_network(False))
    assert seen["tmp"] == "written" and seen["home"] == "/tmp"
    assert {seen[name] for name in ("root", "venv", "etc")} == {"EROFS"}, seen


async def test_an_import_has_no_network_and_a_read_only_root(tenants: Tenants, runs: Runs) -> None:
    """Attack (the one reproduced): bob's pickle, loaded by his model import, calls alice's
    private replica at its container address, and writes into the image's root. Safe: its
    container has no network but its loopback, and writes only to its job folder and
    /tmp; alice's replica is untouched and still served."""
    replica = runs.serve("alice-replica", service_network(f"test-{uuid.uuid4().hex[:8]}", 1))
    target = f"{replica.address}:{PORT}"
    assert answer(target) == "alice-replica"
    writes = {**WRITES, "job": f"{JOB_DIR}/out/x"}
    code = probe_code([target], writes) + "raise SystemExit(3)\n"

    job = await bob_imports(tenants, hostile_pickle(code), "net-probe")

    assert job["state"] == "failed"
    status, log = await tenants.bob("GET", f"{API}/jobs/{job['id']}/log")
    assert status == 200
    seen = seen_in(log["text"].splitlines())
    assert refused(seen, [target]) and seen["interfaces"] == ["lo"], seen
    assert seen["tmp"] == seen["job"] == "written", seen
    assert {seen[name] for name in ("root", "venv", "etc")} == {"EROFS"}, seen
    assert answer(target) == "alice-replica"
