"""Environment routes through a real Jupyter server (fake backend): the registry, the build
in the background with its log, image uploads and pulls."""

from __future__ import annotations

import asyncio

import pytest

from tests.rest.conftest import Api
from tests.services.test_environments import docker_tar, fake_builder, fake_wheel
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.registry import models as m

API = "workbench/api/v1"


@pytest.fixture
def backend(users, tmp_path):
    # a stand-in Workbench wheel, and a Dockerfile the fake backend reads
    users.workbench.environments.kind.make_builder = fake_builder(fake_wheel(tmp_path / "dist"))
    fake = users.workbench.backend()
    fake.add_image(DEFAULT_BASE_IMAGE)
    return fake


async def settled(api, env_id: int, timeout: float = 20) -> dict:
    """The environment once its state is not "building" any more."""
    for _ in range(int(timeout / 0.05)):
        code, env = await api("GET", f"{API}/environments/{env_id}")
        assert code == 200
        if env["state"] != "building":
            return env
        await asyncio.sleep(0.05)
    raise AssertionError(f"environment {env_id} still building after {timeout} s")


async def test_environment_lifecycle(users, backend):
    code, env = await users.bob(
        "POST", f"{API}/environments", {"name": "py", "definition": "python"}
    )
    assert code == 201 and (env["state"], env["framework"], env["owner"]) == (
        "draft",
        "python",
        "bob",
    )
    eid = env["id"]
    code, listed = await users.bob("GET", f"{API}/environments", params={"mine": "true"})
    assert [e["id"] for e in listed] == [eid]
    code, changed = await users.bob(
        "PATCH", f"{API}/environments/{eid}", {"description": "lean", "visibility": "public"}
    )
    assert (code, changed["description"], changed["visibility"]) == (200, "lean", "public")

    code, started = await users.bob("POST", f"{API}/environments/{eid}/build")
    assert (code, started["state"]) == (202, "building")
    ready = await settled(users.bob, eid)
    assert ready["state"] == "ready"
    assert ready["image_ref"] == f"workbench/env-python:env-{eid}"

    # its build is a job: its log is the job's, and whoever sees the environment reads it
    carol = users.workbench.users.add_user("carol")
    token = users.workbench.users.create_token(carol.id, "t").secret
    reader = Api(users.alice.fetch, token, "carol")
    code, page = await reader("GET", f"{API}/jobs/{ready['job_id']}/log")
    assert code == 200 and page["state"] == "succeeded"
    assert "Step 1/" in page["text"] and f"({ready['image_id']})" in page["text"]
    offset = page["next_offset"] - 10
    code, tail = await reader("GET", f"{API}/jobs/{ready['job_id']}/log", params={"offset": offset})
    assert code == 200 and tail["text"] == page["text"].encode()[offset:].decode()
    code, err = await reader("POST", f"{API}/jobs/{ready['job_id']}/cancel")
    assert (code, err["error"]) == (404, "not_found")  # reading it is not owning it
    await users.bob("PATCH", f"{API}/environments/{eid}", {"visibility": "private"})
    code, err = await reader("GET", f"{API}/jobs/{ready['job_id']}/log")
    assert (code, err["error"]) == (404, "not_found")  # private again: not hers to read

    assert (await users.bob("DELETE", f"{API}/environments/{eid}"))[0] == 204
    assert (await users.bob("GET", f"{API}/environments/{eid}"))[0] == 404


async def test_bad_requests(users, backend):
    for fields, status, error in [
        ({"name": "x", "framework": "python", "device": "tpu"}, 400, "invalid_input"),
        ({"name": "x", "definition": "cobol"}, 400, "invalid_input"),
        ({"name": "x", "definition": "python", "framework": "keras"}, 400, "invalid_input"),
        ({"name": "x", "framework": "python", "visibility": "preset"}, 403, "forbidden"),
        ({"name": "x", "framework": "python", "colour": "red"}, 400, "invalid_input"),
        ({"name": "", "framework": "python"}, 400, "invalid_input"),
    ]:
        code, err = await users.bob("POST", f"{API}/environments", fields)
        assert (code, err["error"]) == (status, error), fields
    assert (await users.bob("GET", f"{API}/environments"))[1] == []
    code, err = await users.bob("GET", f"{API}/environments", params={"device": "tpu"})
    assert (code, err["error"]) == (400, "invalid_input")


async def test_others_see_shared_environments_but_cannot_change_them(users, backend):
    _, private = await users.alice(
        "POST", f"{API}/environments", {"name": "mine", "framework": "python"}
    )
    _, public = await users.alice(
        "POST",
        f"{API}/environments",
        {"name": "ours", "framework": "python", "visibility": "public"},
    )
    assert (await users.bob("GET", f"{API}/environments/{private['id']}"))[0] == 404
    assert (await users.bob("GET", f"{API}/environments/{public['id']}"))[0] == 200
    for method, path, body in [
        ("PATCH", f"{API}/environments/{public['id']}", {"description": "x"}),
        ("DELETE", f"{API}/environments/{public['id']}", None),
        ("POST", f"{API}/environments/{public['id']}/build", None),
    ]:
        code, err = await users.bob(method, path, body)
        assert (code, err["error"]) == (403, "forbidden"), (method, path)


async def test_a_failed_build_is_reported(users, backend):
    _, env = await users.bob("POST", f"{API}/environments", {"name": "py", "definition": "python"})
    eid = env["id"]
    backend.fail_build(f"workbench/env-python:env-{eid}", "pip failed", lines=["no numpy"])
    assert (await users.bob("POST", f"{API}/environments/{eid}/build"))[0] == 202
    failed = await settled(users.bob, eid)
    assert failed["state"] == "failed" and "pip failed" in failed["state_reason"]
    _, page = await users.bob("GET", f"{API}/jobs/{failed['job_id']}/log")
    last = page["text"].splitlines()[-1]
    assert "no numpy\n" in page["text"] and last.startswith("[workbench] job ")
    assert " failed: building workbench/env-python" in last
    _, plain = await users.bob("POST", f"{API}/environments", {"name": "k", "framework": "keras"})
    code, err = await users.bob("POST", f"{API}/environments/{plain['id']}/build")
    assert (code, err["error"]) == (409, "conflict")


async def test_delete_is_refused_while_a_workspace_uses_it(users, backend):
    _, env = await users.bob("POST", f"{API}/environments", {"name": "py", "framework": "python"})
    with users.workbench.registry.session() as s:
        s.add(
            m.Workspace(
                name="ws",
                purpose="text",
                sub_purpose="classification",
                environment_id=env["id"],
                owner_id=s.get(m.Environment, env["id"]).owner_id,
            )
        )
    code, err = await users.bob("DELETE", f"{API}/environments/{env['id']}")
    assert (code, err["error"]) == (409, "conflict") and err["details"]["workspaces"]


async def test_image_upload(users, backend, tmp_path):
    _, env = await users.bob("POST", f"{API}/environments", {"name": "py", "framework": "python"})
    path = f"{API}/environments/{env['id']}/image"
    for kwargs, status, error in [
        ({"leave_out": ("manifest.json",)}, 400, "archive_corrupt"),
        ({"leave_out": ("aaaa/layer.tar",)}, 400, "archive_corrupt"),
        ({"tags": []}, 400, "invalid_input"),
    ]:
        bad = docker_tar(tmp_path / "bad.tar", **kwargs)
        code, err = await users.bob("PUT", path, raw=bad.read_bytes())
        assert (code, err["error"]) == (status, error), kwargs
    code, err = await users.bob("PUT", path, raw=b"just some bytes, not a tar")
    assert (code, err["error"]) == (415, "archive_format")
    good = docker_tar(tmp_path / "good.tar").read_bytes()
    code, err = await users.alice("PUT", path, raw=good)
    assert code == 404
    code, info = await users.bob("PUT", path, raw=good)
    assert (code, info["state"], info["image_ref"]) == (202, "building", "")  # a load job
    assert info["job_id"]
    info = await settled(users.bob, env["id"])
    own = f"workbench/env-{env['id']}:{info['image_id'][7:19]}"  # not the tar's own tag
    assert (info["state"], info["image_ref"]) == ("ready", own)
    assert backend.inspect_image(own).id == info["image_id"]
    assert not list((users.workbench.store.root / "tmp").glob("upload-*"))


async def test_pull_needs_docker(users, backend):
    _, env = await users.bob("POST", f"{API}/environments", {"name": "py", "framework": "python"})
    path = f"{API}/environments/{env['id']}/pull"
    code, err = await users.bob("POST", path, {"reference": "registry.example/t/py:3.7"})
    assert (code, err["error"]) == (501, "backend_unsupported")
    assert "upload the image as a docker save tar" in err["message"].lower()
    code, err = await users.bob("POST", path, {"reference": "-rf /"})
    assert (code, err["error"]) == (400, "invalid_input")


async def test_presets(users, backend):
    code, err = await users.bob("POST", f"{API}/environments/presets")
    assert (code, err["error"]) == (403, "forbidden")
    code, presets = await users.alice("POST", f"{API}/environments/presets")
    assert code == 200
    assert sorted(p["name"] for p in presets) == ["onnx", "python", "pytorch", "tensorflow"]
    code, seen = await users.bob("GET", f"{API}/environments", params={"visibility": "preset"})
    assert sorted(p["id"] for p in seen) == sorted(p["id"] for p in presets)
    code, err = await users.bob(
        "PATCH", f"{API}/environments/{presets[0]['id']}", {"visibility": "private"}
    )
    assert (code, err["error"]) == (403, "forbidden")
