"""Workspace build routes through a real Jupyter server (fake backend): a build is a job
(202) whose log is read like any job's while it runs, JSON errors before it is queued, and
the listing of docker_image/."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.conftest import add_environment
from tests.rest.conftest import finished
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.workspaces.schemas import WorkspaceCreate

API = "workbench/api/v1"
DOCKERFILE = (
    "ARG WORKBENCH_ENV_IMAGE\nFROM ${WORKBENCH_ENV_IMAGE}\n"
    'RUN make\nCMD ["python3", "-c", "print(1)"]\n'
)


@pytest.fixture
def ws(users):
    """bob's workspace with the project code/demo."""
    wb = users.workbench
    wb.backend().add_image(DEFAULT_BASE_IMAGE)
    env_id = add_environment(
        wb, name="python", framework="python", image_ref="wb/env:1", owner_id=1, visibility="preset"
    )
    body = {
        "name": "ws",
        "purpose": "text",
        "sub_purpose": "classification",
        "environment_id": env_id,
        "code": {"kind": "upload"},
    }
    wid = wb.workspaces.create(wb.users.find("bob"), WorkspaceCreate.model_validate(body)).id
    project = wb.workspaces.folder(wid) / "code" / "demo"
    project.mkdir()
    (project / "Dockerfile").write_text(DOCKERFILE)
    return wid


async def log_of(api, job_id: int) -> list[str]:
    code, page = await api("GET", f"{API}/jobs/{job_id}/log")
    assert code == 200
    return page["text"].splitlines()


async def test_a_build_is_a_job_whose_log_is_read_while_it_runs(users, ws, monkeypatch):
    backend = users.workbench.backend()
    read_midway = threading.Event()
    build_image = backend.build_image

    def gated(context, tag, **kwargs):  # the build goes on once its log was read midway
        yield "first step"
        assert read_midway.wait(10), "nobody read the log while it built"
        yield from build_image(context, tag, **kwargs)

    monkeypatch.setattr(backend, "build_image", gated)
    code, started = await users.bob(
        "POST",
        f"{API}/workspaces/{ws}/builds",
        {"project": "demo", "kind": "train", "name": "demo"},
    )
    assert code == 202 and started["path"] == "docker_image/train-demo.tar"
    job_id = started["job_id"]
    for _ in range(400):
        if "first step" in await log_of(users.bob, job_id):
            break
        await asyncio.sleep(0.025)
    (_, job) = await users.bob("GET", f"{API}/jobs/{job_id}")
    assert job["state"] == "running" and job["kind"] == "workspace-build"
    read_midway.set()
    job = await finished(users.bob, job_id)
    lines = await log_of(users.bob, job_id)
    assert job["state"] == "succeeded", lines
    assert lines[:3] == [
        "copying code/demo for the build",
        f"building code/demo as workbench/ws-{ws}-train-demo:latest",
        "first step",
    ]
    assert "Step 3/4 : RUN make" in lines
    assert "succeeded: saved docker_image/train-demo.tar" in lines[-1]
    code, images = await users.bob("GET", f"{API}/workspaces/{ws}/images")
    assert code == 200
    assert [(i["path"], i["kind"], i["name"]) for i in images] == [
        ("docker_image/train-demo.tar", "train", "demo")
    ]


async def test_a_failed_build_fails_its_job_with_the_engine_s_error(users, ws):
    users.workbench.backend().fail_build(
        f"workbench/ws-{ws}-predict-api:latest", "make: *** Error 2", lines=["cc: not found"]
    )
    code, started = await users.bob(
        "POST",
        f"{API}/workspaces/{ws}/builds",
        {"project": "demo", "kind": "predict", "name": "api"},
    )
    assert code == 202
    job = await finished(users.bob, started["job_id"])
    assert job["state"] == "failed" and job["result"]["error"] == "build_failed"
    assert "make: *** Error 2" in job["message"]
    assert "cc: not found" in await log_of(users.bob, started["job_id"])
    assert (await users.bob("GET", f"{API}/workspaces/{ws}/images"))[1] == []


async def test_refusals_are_json_errors(users, ws):
    path = f"{API}/workspaces/{ws}/builds"
    for body, status, error in [
        ({"project": "demo", "kind": "train", "name": "Bad Name"}, 400, "invalid_input"),
        ({"project": "demo", "kind": "deploy", "name": "x"}, 400, "invalid_input"),
        ({"project": "../..", "kind": "train", "name": "x"}, 400, "invalid_input"),
        ({"project": "nope", "kind": "train", "name": "x"}, 404, "not_found"),
        ({"project": "demo", "kind": "train"}, 400, "invalid_input"),
    ]:
        code, err = await users.bob("POST", path, body)
        assert (code, err["error"]) == (status, error), body
    body = {"project": "demo", "kind": "train", "name": "x"}
    code, err = await users.alice("POST", path, body)
    assert (code, err["error"]) == (404, "not_found")
    code, err = await users.alice("GET", f"{API}/workspaces/{ws}/images")
    assert (code, err["error"]) == (404, "not_found")
