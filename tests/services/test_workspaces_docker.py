"""The workspace lifecycle on the real Docker Engine, from the real envs/python image:
the dataset mounted read-only, limits and hardening in `docker inspect`, JupyterLab up
behind its token, files kept over stop/start, and reconciliation after a kill."""

from __future__ import annotations

import time

import docker
import httpx
import pytest

from tests.conftest import add_environment, add_online_dataset, add_people, make_workbench
from workbench.workspaces.schemas import WorkspaceCreate

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def wb(tmp_path, python_env_image):
    workbench = make_workbench(tmp_path / "home", backend="docker")
    yield workbench
    workbench.close()


@pytest.fixture
def workspace(wb, python_env_image, tmp_path):
    people = add_people(wb)
    ds_id = add_online_dataset(wb, people.alice, tmp_path, {"0": 3, "1": 2})
    env_id = add_environment(
        wb,
        name="python",
        framework="python",
        image_ref=python_env_image,
        owner_id=people.alice.id,
        visibility="preset",
    )
    ws = wb.workspaces.create(
        people.bob,
        WorkspaceCreate(
            name="ws",
            purpose="image",
            sub_purpose="classification",
            environment_id=env_id,
            dataset_id=ds_id,
            resources={"cpus": 1.5, "memory_mb": 1536},
        ),
    )
    yield people.bob, ws
    wb.workspaces.delete(people.bob, ws.id)
    assert (
        wb.backend().list(
            {"workbench.managed": str(wb.settings.home), "workbench.workspace": str(ws.id)}
        )
        == []
    )


def container_of(wb, actor, ws_id):
    run = wb.backend().status(wb.workspaces.running_container(actor, ws_id))
    return docker.from_env().containers.get(run.id), run


def wait_for_jupyterlab(wb, ws_id, port, timeout=90):
    url = f"http://127.0.0.1:{port}/workbench/proxy/workspaces/{ws_id}/api/status"
    headers = {"Authorization": f"token {wb.workspaces.jupyter_token(ws_id)}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer at {url} in {timeout}s")


def test_a_workspace_on_docker(wb, workspace):
    bob, ws = workspace
    assert wb.workspaces.start(bob, ws.id).state == "running"
    container, run = container_of(wb, bob, ws.id)

    # limits and hardening, as the engine sees them
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 1536 * 1024**2 and host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] > 0
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    mounts = {mt["Destination"]: mt for mt in container.attrs["Mounts"]}
    assert mounts["/workspace/dataset/train"]["RW"] is False
    assert mounts["/workspace/help_doc"]["RW"] is False
    assert mounts["/workspace/code"]["RW"] is True
    assert not any("docker.sock" in mt["Source"] for mt in container.attrs["Mounts"])
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["WORKBENCH_TOKEN"].startswith("wb_") and "WORKBENCH_DB_URL" not in env

    # JupyterLab answers with its token, and not without
    url = wait_for_jupyterlab(wb, ws.id, run.ports[8888])
    assert httpx.get(url, timeout=5).status_code == 403

    # from inside: the dataset is read-only, code/ is writable by the workspace user
    denied = container.exec_run(["sh", "-c", "touch /workspace/dataset/train/x"])
    assert denied.exit_code != 0 and b"Read-only file system" in denied.output
    listed = container.exec_run(["ls", "/workspace/dataset/train"])
    assert listed.output.split() == [b"0", b"1"]
    wrote = container.exec_run(["sh", "-c", "id -u && echo kept > /workspace/code/notes.txt"])
    assert wrote.exit_code == 0 and wrote.output.strip() == b"1000"

    # stop and start: the files stay
    assert wb.workspaces.stop(bob, ws.id).state == "stopped"
    assert wb.workspaces.start(bob, ws.id).state == "running"
    container, run = container_of(wb, bob, ws.id)
    assert container.exec_run(["cat", "/workspace/code/notes.txt"]).output == b"kept\n"

    # a server restart (a new Workbench over the same home) finds the files and the run
    assert wb.workspaces.stop(bob, ws.id).state == "stopped"
    restarted = make_workbench(wb.settings.home, backend="docker")
    try:
        assert restarted.workspaces.start(bob, ws.id).state == "running"
        container, run = container_of(restarted, bob, ws.id)
        assert container.exec_run(["cat", "/workspace/code/notes.txt"]).output == b"kept\n"
    finally:
        restarted.close()

    # a container killed behind our back is noticed at reconciliation
    container.kill()
    assert wb.workspaces.reconcile() == [ws.id]
    got = wb.workspaces.get(bob, ws.id)
    assert got.state == "failed" and "exit code 137" in got.state_reason
