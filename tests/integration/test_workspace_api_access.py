"""From inside a workspace, the `workbench` client reaches this server's REST API as the
owner, with the container's scoped token, through the host's bridge address: what the
workspace needs (itself), not what it does not (minting tokens, deleting models)."""

from __future__ import annotations

import asyncio

import docker
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHECK = (
    "import os; from workbench.client import WorkbenchClient as C; c = C.from_env(); "
    "print(c.me().username, c.workspaces.get(int(os.environ['WORKBENCH_WORKSPACE'])).name)"
)


async def test_the_client_inside_a_workspace_calls_the_api_as_its_owner(lab, jp_serverapp):
    # what a real server does once its loop runs (pytest-jupyter does not run this step)
    await jp_serverapp.extension_manager.start_all_extensions()
    assert lab.wb.workspaces.api_url.startswith("http://workbench-host:")
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    container_id = lab.wb.workspaces.running_container(lab.owner, ws_id)
    container = docker.from_env().containers.get(container_id)
    loop = asyncio.get_running_loop()
    # the server answers on this event loop: run the blocking exec beside it
    done = await loop.run_in_executor(None, lambda: container.exec_run(["python", "-c", CHECK]))
    assert done.exit_code == 0, done.output.decode()
    assert done.output.decode().split()[0] == "owner"
    escalate = await loop.run_in_executor(
        None,
        lambda: container.exec_run(
            [
                "python",
                "-c",
                "from workbench.client import WorkbenchClient as C; C.from_env().create_token('x')",
            ]
        ),
    )
    assert escalate.exit_code != 0 and f"workspace:{ws_id} token cannot".encode() in escalate.output
    delete = await loop.run_in_executor(
        None,
        lambda: container.exec_run(
            [
                "python",
                "-c",
                "from workbench.client import WorkbenchClient as C; C.from_env().models.delete(1)",
            ]
        ),
    )
    assert delete.exit_code != 0 and b"token cannot call DELETE" in delete.output, delete.output
