"""Workspace build routes through a real Jupyter server (fake backend): the log streamed
line by line with its final OK or ERROR line, JSON errors before the build starts, and the
listing of docker_image/."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from tests.conftest import add_environment
from workbench.environments import DEFAULT_BASE_IMAGE
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


async def stream(
    api, path: str, body: dict, on_chunk: Callable[[bytes], None] | None = None
) -> tuple[int, list[bytes], dict]:
    """POST and collect the reply's chunks as they arrive."""
    chunks: list[bytes] = []

    def received(chunk: bytes) -> None:
        chunks.append(chunk)
        if on_chunk:
            on_chunk(chunk)

    response = await api.fetch(
        *path.split("/"),
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"token {api.token}"},
        streaming_callback=received,
    )
    return response.code, chunks, dict(response.headers)


async def test_build_streams_its_log_then_the_tar_is_listed(users, ws, monkeypatch):
    backend = users.workbench.backend()
    seen_first = threading.Event()
    build_image = backend.build_image

    def gated(context, tag, **kwargs):  # the build goes on once the client has a line
        yield "first step"
        assert seen_first.wait(10), "the client got nothing while building: not streamed"
        yield from build_image(context, tag, **kwargs)

    monkeypatch.setattr(backend, "build_image", gated)
    code, chunks, headers = await stream(
        users.bob,
        f"{API}/workspaces/{ws}/builds",
        {"project": "demo", "kind": "train", "name": "demo"},
        on_chunk=lambda chunk: b"first step" in chunk and seen_first.set(),
    )
    lines = b"".join(chunks).decode().splitlines()
    assert code == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert lines[:3] == [
        "copying code/demo for the build",
        f"building code/demo as workbench/ws-{ws}-train-demo:latest",
        "first step",
    ]
    assert "Step 3/4 : RUN make" in lines
    assert lines[-1] == "OK docker_image/train-demo.tar"
    code, images = await users.bob("GET", f"{API}/workspaces/{ws}/images")
    assert code == 200
    assert [(i["path"], i["kind"], i["name"]) for i in images] == [
        ("docker_image/train-demo.tar", "train", "demo")
    ]


async def test_a_failed_build_ends_with_an_error_line(users, ws):
    users.workbench.backend().fail_build(
        f"workbench/ws-{ws}-predict-api:latest", "make: *** Error 2", lines=["cc: not found"]
    )
    code, chunks, _ = await stream(
        users.bob,
        f"{API}/workspaces/{ws}/builds",
        {"project": "demo", "kind": "predict", "name": "api"},
    )
    lines = b"".join(chunks).decode().splitlines()
    assert code == 200 and "cc: not found" in lines
    assert lines[-1].startswith("ERROR build_failed: building workbench/ws-")
    assert lines[-1].endswith("failed: make: *** Error 2")
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
