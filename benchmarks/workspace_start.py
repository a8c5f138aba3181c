"""Time from "start the workspace" to "its JupyterLab answers through the proxy", next to
the floor: a bare ``docker run`` of the same image and command, timed to the moment the
same JupyterLab answers on its own port. Both measured in one run, median of --repeat.

    .venv/bin/python benchmarks/workspace_start.py [--repeat 5]

Needs the Docker Engine (scripts/docker) and builds envs/python if it is not built yet.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import docker_benchmark, print_against_floor, python_environment  # noqa: E402

from tests.docker_fixtures import PYTHON_ENV_TAG  # noqa: E402
from tests.server import free_port, live_server  # noqa: E402
from workbench.client import WorkbenchClient  # noqa: E402
from workbench.config import Settings  # noqa: E402
from workbench.services import Workbench  # noqa: E402

OWNER = "owner"


def wait_until_ok(url: str, headers: dict[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def timed(fn: Callable[[], None], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bare_docker_run(image: str) -> Callable[[], None]:
    """`docker run` of the image with the command and environment a workspace gets."""

    def once() -> None:
        token, port = secrets.token_hex(16), free_port()
        base = "/workbench/proxy/workspaces/0/"
        name = f"wb-bench-{secrets.token_hex(4)}"
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--rm",
                "--name",
                name,
                "-p",
                f"127.0.0.1:{port}:8888",
                "-e",
                f"JUPYTER_TOKEN={token}",
                "-e",
                f"JUPYTER_BASE_URL={base}",
                image,
            ],
            check=True,
            capture_output=True,
        )
        try:
            wait_until_ok(
                f"http://127.0.0.1:{port}{base}api/status", {"Authorization": f"token {token}"}
            )
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)

    return once


def main() -> int:
    repeat, _ = docker_benchmark(__doc__.splitlines()[0])
    floor_name = "floor: bare docker run -> JupyterLab answers"
    results = {floor_name: timed(bare_docker_run(PYTHON_ENV_TAG), repeat)}

    os.environ["WORKBENCH_BACKEND"] = "docker"
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp), owner=OWNER) as server:
        wb = Workbench.from_settings(Settings(home=server.home))
        owner = wb.users.ensure_owner(OWNER)
        token = wb.users.create_token(owner.id, "bench").secret
        env_id = python_environment(wb, owner.id)
        client = WorkbenchClient(server.url, token, timeout=300)
        ws = client.workspaces.create(
            name="bench", purpose="text", sub_purpose="classification", environment_id=env_id
        )
        status = f"{server.url}workbench/proxy/workspaces/{ws.id}/api/status"
        login = {"Authorization": f"token {server.jupyter_token}"}

        def start_through_proxy() -> None:
            client.workspaces.start(ws.id)
            try:
                wait_until_ok(status, login)
            finally:
                client.workspaces.stop(ws.id)

        results["Workbench: start -> JupyterLab answers via proxy"] = timed(
            start_through_proxy, repeat
        )
        client.workspaces.delete(ws.id)
        wb.close()

    print_against_floor(results, floor_name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
