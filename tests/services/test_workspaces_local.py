"""The workspace lifecycle on the local backend (plain processes, no Docker), where it
applies: JupyterLab from a virtual environment answering behind its token, the dataset
and code reachable in the workspace folder, files kept over stop/start, reconciliation
after the process is killed. Isolation, limits and read-only mounts do not apply here
(see workbench/backends/local.py)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import add_environment, add_online_dataset, add_people, make_workbench
from workbench.workspaces.schemas import WorkspaceCreate

pytestmark = pytest.mark.slow


@pytest.fixture
def wb(tmp_path):
    workbench = make_workbench(tmp_path / "home", backend="local")
    # this test run's own virtual environment has JupyterLab: use it as the image
    workbench.backend().register_venv(Path(sys.prefix), "workbench/env-python:local")
    yield workbench
    workbench.close()


def wait_ready(wb, actor, ws_id, timeout=90):
    deadline = time.monotonic() + timeout
    while not wb.workspaces.ready(actor, ws_id):
        assert time.monotonic() < deadline, wb.backend().logs(
            wb.workspaces.running_container(actor, ws_id), tail=30
        )
        time.sleep(0.5)


def test_a_workspace_on_local_processes(wb, tmp_path):
    people = add_people(wb)
    ds_id = add_online_dataset(wb, people.alice, tmp_path, {"0": 2, "1": 1})
    env_id = add_environment(
        wb,
        name="python",
        image_ref="workbench/env-python:local",
        owner_id=people.alice.id,
        visibility="public",
    )
    bob = people.bob
    ws = wb.workspaces.create(
        bob,
        WorkspaceCreate(
            name="local",
            purpose="image",
            sub_purpose="classification",
            environment_id=env_id,
            dataset_id=ds_id,
        ),
    )

    assert wb.workspaces.start(bob, ws.id).state == "running"
    wait_ready(wb, bob, ws.id)
    host, port = wb.workspaces.endpoint(bob, ws.id)
    base = f"http://{host}:{port}/workbench/proxy/workspaces/{ws.id}/api/contents/"
    token = {"Authorization": f"token {wb.workspaces.jupyter_token(ws.id)}"}
    assert httpx.get(base, timeout=5).status_code == 403
    listing = httpx.get(base, headers=token, timeout=5).json()
    assert {"code", "dataset", "docker_image", "help_doc", "model"} <= {
        item["name"] for item in listing["content"]
    }
    train = httpx.get(base + "dataset/train", headers=token, timeout=5).json()
    assert sorted(item["name"] for item in train["content"]) == ["0", "1"]

    note = wb.workspaces.folder(ws.id) / "code" / "notes.txt"
    note.write_text("kept")
    assert wb.workspaces.stop(bob, ws.id).state == "stopped"
    assert wb.workspaces.start(bob, ws.id).state == "running"
    wait_ready(wb, bob, ws.id)
    assert note.read_text() == "kept"

    run = wb.workspaces.running_container(bob, ws.id)
    pid = wb.backend()._read(wb.backend()._runs_dir / run / "run.json").pid
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while wb.workspaces.reconcile() != [ws.id]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert wb.workspaces.get(bob, ws.id).state == "failed"
    wb.workspaces.delete(bob, ws.id)
