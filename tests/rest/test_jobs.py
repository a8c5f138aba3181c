"""The jobs area through a real Jupyter server (fake backend): an environment build seen as
a job (list, get, log with its last line), other users' jobs hidden, admins' ``all``,
cancel of a running job and of one that is over, and the query checks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.rest.conftest import finished
from tests.rest.test_environments import backend  # noqa: F401  (fixture)

API = "workbench/api/v1"


async def new_environment(api, name: str) -> int:
    code, env = await api("POST", f"{API}/environments", {"name": name, "definition": "python"})
    assert code == 201, env
    return env["id"]


async def test_a_build_is_a_job_its_owner_follows(users, backend):  # noqa: F811
    eid = await new_environment(users.bob, "py")
    code, started = await users.bob("POST", f"{API}/environments/{eid}/build")
    assert code == 202 and started["job_id"]
    job_id = started["job_id"]

    job = await finished(users.bob, job_id)
    assert (job["kind"], job["owner"], job["target_type"], job["target_id"]) == (
        "environment-image",
        "bob",
        "environment",
        eid,
    )
    assert (job["state"], job["progress"]) == ("succeeded", 1.0)
    assert job["message"].startswith(f"ready: workbench/env-python:env-{eid}")
    assert job["instance"]  # the server that ran it
    assert job["started_at"] and job["finished_at"]

    code, listed = await users.bob("GET", f"{API}/jobs")
    assert code == 200 and [j["id"] for j in listed] == [job_id]
    code, listed = await users.bob(
        "GET", f"{API}/jobs", params={"kind": "environment-image", "target_id": eid}
    )
    assert [j["id"] for j in listed] == [job_id]
    code, listed = await users.bob("GET", f"{API}/jobs", params={"state": "running"})
    assert (code, listed) == (200, [])

    code, page = await users.bob("GET", f"{API}/jobs/{job_id}/log")
    assert code == 200 and page["state"] == "succeeded" and page["offset"] == 0
    lines = page["text"].splitlines()
    tag = f"workbench/env-python:env-{eid}"
    assert lines[0] == f"building environment {eid} from envs/python as {tag}"
    assert lines[-1].startswith(f"[workbench] job {job_id} succeeded: ready: ")
    assert page["next_offset"] == len(page["text"].encode())
    code, rest = await users.bob(
        "GET", f"{API}/jobs/{job_id}/log", params={"offset": page["next_offset"]}
    )
    assert (code, rest["text"], rest["next_offset"]) == (200, "", page["next_offset"])


async def test_other_users_jobs_do_not_exist_for_them(users, backend):  # noqa: F811
    eid = await new_environment(users.bob, "py")
    job_id = (await users.bob("POST", f"{API}/environments/{eid}/build"))[1]["job_id"]
    await finished(users.bob, job_id)
    code, carol = await users.alice("POST", f"{API}/users", {"username": "carol"})
    assert code == 201
    token = users.workbench.users.create_token(carol["id"], "t").secret
    carol_api = type(users.bob)(users.bob.fetch, token, "carol")

    assert await carol_api("GET", f"{API}/jobs") == (200, [])
    for method, path in (
        ("GET", f"{API}/jobs/{job_id}"),
        ("GET", f"{API}/jobs/{job_id}/log"),
        ("POST", f"{API}/jobs/{job_id}/cancel"),
        ("GET", f"{API}/jobs/999999"),
    ):
        code, body = await carol_api(method, path)
        assert (code, body["error"]) == (404, "not_found"), (method, path)
    code, body = await carol_api("GET", f"{API}/jobs", params={"all": "true"})
    assert code == 400 and "Only admins" in body["message"]

    # an admin sees everyone's with `all`, and any one job
    code, everyone = await users.alice("GET", f"{API}/jobs", params={"all": "true"})
    assert code == 200 and job_id in [j["id"] for j in everyone]
    assert (await users.alice("GET", f"{API}/jobs"))[1] == []  # her own: none
    assert (await users.alice("GET", f"{API}/jobs/{job_id}"))[1]["owner"] == "bob"


@pytest.fixture
def slow_build(backend, monkeypatch) -> Iterator[threading.Event]:  # noqa: F811
    """Builds log a line every 50 ms until the event is set (10 s at most)."""
    release = threading.Event()
    build_image = backend.build_image

    def gated(context, tag, **kwargs):
        yield "Step 1/2 : FROM base"
        deadline = time.monotonic() + 10
        while not release.wait(0.05) and time.monotonic() < deadline:
            yield "waiting"
        yield from build_image(context, tag, **kwargs)

    monkeypatch.setattr(backend, "build_image", gated)
    yield release
    release.set()


async def test_cancel_a_running_build(users, slow_build):
    eid = await new_environment(users.bob, "py")
    job_id = (await users.bob("POST", f"{API}/environments/{eid}/build"))[1]["job_id"]
    for _ in range(200):
        code, job = await users.bob("GET", f"{API}/jobs/{job_id}")
        if job["state"] == "running" and job["progress"] > 0:
            break
        await asyncio.sleep(0.05)
    assert (job["state"], job["progress"]) == ("running", 0.5 * 0.95)

    code, stopped = await users.bob("POST", f"{API}/jobs/{job_id}/cancel")
    assert (code, stopped["state"]) == (200, "stopped")
    assert not slow_build.is_set()  # it stopped while the build still went on
    code, env = await users.bob("GET", f"{API}/environments/{eid}")
    assert (env["state"], env["image_ref"]) == ("draft", "")  # as it was before
    page = (await users.bob("GET", f"{API}/jobs/{job_id}/log"))[1]
    assert page["text"].splitlines()[-1].startswith(f"[workbench] job {job_id} stopped")

    code, body = await users.bob("POST", f"{API}/jobs/{job_id}/cancel")
    assert (code, body["error"]) == (409, "conflict")
    assert "stopped" in body["message"]


async def test_bad_queries_are_400(users):
    for params in ({"state": "sleeping"}, {"limit": "0"}, {"colour": "red"}):
        code, body = await users.bob("GET", f"{API}/jobs", params=params)
        assert (code, body["error"]) == (400, "invalid_input"), params
    code, body = await users.bob("GET", f"{API}/jobs/1/log", params={"offset": "-1"})
    assert (code, body["error"]) == (400, "invalid_input")
