"""A real Jupyter server (pytest-jupyter) on the docker backend with the workspace proxy, and
a workspace of the real python environment image started behind it.

The image is built once per session through the environment builder (skipped when the tag
already carries the same hash). Every workspace a test makes is deleted after it, container
included, and its container's last logs are printed when the test failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAILED, add_environment, server_config
from workbench.enums import Role
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.users import Actor
from workbench.workspaces.schemas import WorkspaceCreate

ROOT = Path(__file__).resolve().parents[2]
OWNER = "owner"
BASE_URL = "/wb/"  # not "/": the container must serve under the server's base URL too
READY_TIMEOUT_S = 90


@pytest.fixture
def jp_base_url() -> str:
    return BASE_URL


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path / "wbhome", "docker")


@dataclass
class Lab:
    """The server, its owner, and helpers to reach workspaces through the proxy."""

    wb: Workbench
    owner: Actor
    alice: Actor
    environment_id: int
    server_url: str  # http://localhost:<port>/wb/
    jupyter_token: str  # the host server's own token
    made: list[int] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.jupyter_token}"}

    def url(self, workspace_id: int, path: str = "") -> str:
        return f"{self.server_url}workbench/proxy/workspaces/{workspace_id}/{path}"

    def ws_url(self, workspace_id: int, path: str) -> str:
        return self.url(workspace_id, path).replace("http://", "ws://", 1)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=30, follow_redirects=False, **kwargs)

    def create(self, actor: Actor, name: str = "ws") -> int:
        spec = WorkspaceCreate.model_validate(
            {
                "name": name,
                "purpose": "image",
                "sub_purpose": "classification",
                "environment_id": self.environment_id,
                "resources": {"cpus": 1, "memory_mb": 1024},
            }
        )
        workspace_id = self.wb.workspaces.create(actor, spec).id
        self.made.append(workspace_id)
        return workspace_id

    async def start(self, actor: Actor, workspace_id: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.wb.workspaces.start, actor, workspace_id)

    async def wait_ready(self, workspace_id: int) -> list[httpx.Response]:
        """Poll .../api/status until JupyterLab answers; every answer before that."""
        seen: list[httpx.Response] = []
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with self.client(headers=self.auth) as client:
            while (r := await client.get(self.url(workspace_id, "api/status"))).status_code != 200:
                seen.append(r)
                assert r.status_code == 503, r.text
                assert time.monotonic() < deadline, f"not ready in {READY_TIMEOUT_S} s"
                await asyncio.sleep(0.25)
        return seen

    def report(self) -> str:
        backend = self.wb.backend()
        parts = []
        with self.wb.registry.session() as s:
            rows = [s.get(m.Workspace, i) for i in self.made]
            containers = [(r.id, r.container_id) for r in rows if r and r.container_id]
        for workspace_id, container_id in containers:
            try:
                lines = list(backend.logs(container_id, tail=40))
            except Exception as exc:  # gone already: say so
                lines = [f"{type(exc).__name__}: {exc}"]
            parts.append(
                f"--- workspace {workspace_id} ({container_id[:12]}):\n" + "\n".join(lines)
            )
        return "\n".join(parts)

    def cleanup(self) -> None:
        """Delete the workspaces made, containers included."""
        with self.wb.registry.session() as s:
            rows = [s.get(m.Workspace, i) for i in self.made]
            owners = {r.id: r.owner_id for r in rows if r}
        for workspace_id, owner_id in owners.items():
            actor = self.owner if owner_id == self.owner.id else self.alice
            self.wb.workspaces.delete(actor, workspace_id)


@pytest.fixture
def lab(
    request, python_env_image, jp_serverapp, http_server, jp_http_port, jp_auth_header
) -> Iterator[Lab]:
    """The server with the proxy registered, the image as an environment, alice as a
    second user; workspaces made through :meth:`Lab.create` are removed afterwards."""
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    owner = wb.users.find(OWNER)
    assert owner is not None
    info = wb.users.add_user("alice", role=Role.MEMBER)
    alice = wb.users.find(info.username)
    assert alice is not None
    environment_id = add_environment(
        wb,
        name="python",
        framework="python",
        image_ref=python_env_image,
        owner_id=owner.id,
        visibility="preset",
    )
    server = Lab(
        wb=wb,
        owner=owner,
        alice=alice,
        environment_id=environment_id,
        server_url=f"http://localhost:{jp_http_port}{BASE_URL}",
        jupyter_token=jp_auth_header["Authorization"].split()[1],
    )
    yield server
    if request.node.stash.get(FAILED, False):
        print(f"containers of the failed test:\n{server.report()}")
    server.cleanup()
