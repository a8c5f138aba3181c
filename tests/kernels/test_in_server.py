"""Inside the Workbench server: a kernel started through the REST API finds the server's
own registry (configured by traitlets, not the environment) and acts as its owner; its
refusals reach JupyterLab as messages, and on Docker it starts and stops in the workspace."""

from __future__ import annotations

import json

import docker
import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import add_environment, server_config
from workbench.services import Workbench
from workbench.workspaces.schemas import WorkspaceCreate
from workbench_ext.kernels import install_kernelspec, kernels_dir


@pytest.fixture
def jp_server_config(tmp_path, monkeypatch):
    for name in ("WORKBENCH_HOME", "WORKBENCH_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WORKBENCH_TOKEN", "WORKBENCH_URL"):  # the extension sets them: undone after
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("JUPYTERHUB_USER", "nobody")  # the owner comes from the server
    config = server_config(tmp_path / "wbhome", "docker")  # only the Docker test starts one
    config.ServerApp.jpserver_extensions["jupyter_server_terminals"] = False
    return config


def owners_workspace(wb: Workbench, image: str) -> tuple[int, str]:
    """A stopped workspace of the server's owner, and its kernelspec's name."""
    owner = wb.users.find("owner")
    env_id = add_environment(
        wb, name="python", framework="python", image_ref=image, owner_id=owner.id
    )
    ws = wb.workspaces.create(
        owner,
        WorkspaceCreate(
            name="ws", purpose="image", sub_purpose="classification", environment_id=env_id
        ),
    )
    return ws.id, install_kernelspec(ws.id).name  # in the user's data dir (the test's)


async def test_a_stopped_workspace_kernel_fails_with_advice(jp_serverapp, jp_fetch, jp_data_dir):
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    ws_id, name = owners_workspace(wb, "img:1")
    assert kernels_dir() == jp_data_dir / "kernels"

    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert specs[name]["spec"]["display_name"] == f"Python (workspace #{ws_id})"
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": name}))
    assert err.value.code == 409
    message = json.loads(err.value.response.body)["message"]
    assert message.startswith(f"Workspace {ws_id} (ws) is stopped; start it first")


@pytest.mark.docker
@pytest.mark.slow
async def test_a_kernel_starts_and_stops_in_the_workspace(jp_serverapp, jp_fetch, python_env_image):
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    ws_id, name = owners_workspace(wb, python_env_image)
    owner = wb.users.find("owner")
    wb.workspaces.start(owner, ws_id)
    try:
        container = docker.from_env().containers.get(wb.workspaces.running_container(owner, ws_id))
        body = json.dumps({"name": name})
        kernel = json.loads((await jp_fetch("api", "kernels", method="POST", body=body)).body)
        assert [p for p in container.top()["Processes"] if "ipykernel" in " ".join(p)]
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
        assert not [p for p in container.top()["Processes"] if "ipykernel" in " ".join(p)]
    finally:
        wb.workspaces.delete(owner, ws_id)
