"""A real Jupyter server (pytest-jupyter) on the real Docker Engine, with two ordinary users:
alice, whose things are the prize, and bob, the attacker, who has nothing but his own
Workbench token and the REST API; the python environment image as a preset; and a folder
of the host with a root-only secret, which no run may ever reach."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import add_preset_environments, server_config
from tests.rest.conftest import Api
from workbench.backends.docker import DockerBackend
from workbench.enums import Role
from workbench.services import Workbench
from workbench.users import Actor

API = "workbench/api/v1"
#: a JSON line: a run that links its metrics file to it would have it stored as a metric
SECRET = '{"secret": "the server\'s own: never in a user\'s hands"}\n'
SECRET_WORDS = "never in a user"


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path / "wbhome", "docker")


@dataclass
class Tenants:
    wb: Workbench
    alice: Api
    bob: Api
    python_env: int
    python_image: str
    #: alice's and bob's actors, for setting up what is not the attack
    actors: dict[str, Actor]
    #: a folder of the host (not the store's): a root-owned 0600 file and a 0700 folder
    host_secret: Path

    def secret_intact(self) -> bool:
        file = self.host_secret / "secret.txt"
        return (
            file.read_text() == SECRET
            and file.stat().st_mode & 0o777 == 0o600
            and sorted(p.name for p in self.host_secret.iterdir()) == ["secret.txt"]
        )


@pytest.fixture
def tenants(
    jp_serverapp, jp_fetch, tmp_path: Path, docker_backend: DockerBackend, python_env_image: str
) -> Tenants:
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    wb.jobs.runner.interval = 0.2
    wb.start()
    apis, actors = {}, {}
    for name in ("alice", "bob"):
        info = wb.users.add_user(name, role=Role.MEMBER)
        apis[name] = Api(jp_fetch, wb.users.create_token(info.id, "t").secret, name)
        actors[name] = Actor(info.id, info.username, info.role)
    owner = wb.users.ensure_owner("owner")
    env = add_preset_environments(wb, owner.id, {"python": python_env_image})["python"]
    secret = tmp_path / "host-secret"
    secret.mkdir(mode=0o700)
    (secret / "secret.txt").write_text(SECRET)
    os.chmod(secret / "secret.txt", 0o600)
    return Tenants(wb, apis["alice"], apis["bob"], env, python_env_image, actors, secret)


async def finished(api: Api, job_id: int, timeout: float = 300) -> dict[str, Any]:
    """The job once it is over (its owner's view)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        code, job = await api("GET", f"{API}/jobs/{job_id}")
        assert code == 200, job
        if job["state"] in ("succeeded", "failed", "stopped"):
            return job
        assert loop.time() < deadline, f"job {job_id} not over after {timeout} s: {job}"
        await asyncio.sleep(0.2)
