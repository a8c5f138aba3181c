"""Algorithm routes through a real Jupyter server (fake backend): authentication, 404 and 403,
streamed image uploads (a real ``docker save`` tar among them), workspace tars and their
report, errors as JSON, and the Python client's ``algorithms`` API."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest

from tests.rest.conftest import Api
from tests.services.test_algorithms import BAYES_PREDICT, BAYES_TRAIN, digest_of, image_tar
from tests.services.test_builds import make_env, make_workspace
from workbench.backends.docker import DockerBackend
from workbench.client import WorkbenchClient
from workbench.errors import Conflict, InvalidInput

API = "workbench/api/v1"
BAYES = {
    "name": "text-bayes",
    "description": "multinomial naive Bayes",
    "purpose": "text",
    "sub_purpose": "classification",
    "train": BAYES_TRAIN,
    "predict": BAYES_PREDICT,
}


async def upload(api: Api, algorithm_id: int, kind: str, tar: Path) -> tuple[int, dict]:
    return await api(
        "PUT",
        f"{API}/algorithms/{algorithm_id}/images/{kind}",
        raw=tar.read_bytes(),
        params={"filename": tar.name},
        headers={"Content-Type": "application/octet-stream"},
    )


async def loaded(api: Api, algorithm_id: int, kind: str, timeout: float = 20) -> dict:
    """The algorithm once its ``kind`` image's load job is over."""
    for _ in range(int(timeout / 0.05)):
        code, algo = await api("GET", f"{API}/algorithms/{algorithm_id}")
        assert code == 200
        if algo[kind]["state"] != "loading":
            return algo
        await asyncio.sleep(0.05)
    raise AssertionError(f"algorithm {algorithm_id}'s {kind} image still loading: {algo}")


async def test_algorithm_lifecycle(users, tmp_path):
    code, algo = await users.bob("POST", f"{API}/algorithms", BAYES)
    assert code == 201 and (algo["state"], algo["owner"], algo["train"]["state"]) == (
        "draft",
        "bob",
        "missing",
    )
    aid = algo["id"]
    assert algo["train"]["settings"]["env"]["EPOCHS"] == {
        "type": "int",
        "default": 10,
        "description": "passes over the data",
    }
    code, err = await users.bob("POST", f"{API}/algorithms/{aid}/publish")
    assert (code, err["error"]) == (409, "conflict")
    assert "training image is missing" in err["message"]

    code, info = await upload(users.bob, aid, "train", image_tar(tmp_path / "train-v2.tar"))
    assert (code, info["train"]["state"]) == (202, "loading"), info  # checked, then a job
    job_id = info["train"]["job_id"]
    info = await loaded(users.bob, aid, "train")
    code, page = await users.bob("GET", f"{API}/jobs/{job_id}/log")  # kept after its clean-up
    assert page["text"].splitlines()[-1].startswith(f"[workbench] job {job_id} succeeded: ready")
    assert (info["train"]["state"], info["train"]["digest"], info["train"]["source_detail"]) == (
        "ready",
        digest_of(),
        "train-v2.tar",
    )
    assert info["train"]["config"]["cmd"] == ["python", "/app/train.py"]
    code, listed = await users.bob("GET", f"{API}/algorithms", params={"visibility": "mine"})
    assert [a["id"] for a in listed] == [aid]
    code, online = await users.bob("POST", f"{API}/algorithms/{aid}/publish")
    assert (code, online["state"]) == (200, "online")
    code, err = await upload(users.bob, aid, "predict", image_tar(tmp_path / "p.tar"))
    assert (code, err["error"]) == (409, "conflict") and "is online" in err["message"]
    code, offline = await users.bob("POST", f"{API}/algorithms/{aid}/offline")
    assert (code, offline["state"]) == (200, "offline")
    code, changed = await users.bob(
        "PATCH", f"{API}/algorithms/{aid}", {"visibility": "public", "train": {"command": ["x"]}}
    )
    assert (code, changed["visibility"], changed["train"]["settings"]["command"]) == (
        200,
        "public",
        ["x"],
    )
    image_ref = changed["train"]["image_ref"]
    assert users.workbench.backend().inspect_image(image_ref).id == digest_of()
    assert (await users.bob("DELETE", f"{API}/algorithms/{aid}"))[0] == 204
    assert (await users.bob("GET", f"{API}/algorithms/{aid}"))[0] == 404


async def test_others_get_404_for_private_and_403_for_public(users, tmp_path):
    _, private = await users.alice("POST", f"{API}/algorithms", {**BAYES, "name": "p"})
    _, public = await users.alice(
        "POST", f"{API}/algorithms", {**BAYES, "name": "q", "visibility": "public"}
    )
    for method, path in [
        ("GET", f"{API}/algorithms/{private['id']}"),
        ("PATCH", f"{API}/algorithms/{private['id']}"),
        ("POST", f"{API}/algorithms/{private['id']}/publish"),
        ("DELETE", f"{API}/algorithms/{private['id']}"),
    ]:
        code, err = await users.bob(method, path, {} if method == "PATCH" else None)
        assert (code, err["error"]) == (404, "not_found"), (method, path)
    assert (await users.bob("GET", f"{API}/algorithms/{public['id']}"))[0] == 200
    for method, path, body in [
        ("PATCH", f"{API}/algorithms/{public['id']}", {"description": "mine"}),
        ("DELETE", f"{API}/algorithms/{public['id']}", None),
        ("POST", f"{API}/algorithms/{public['id']}/offline", None),
        ("POST", f"{API}/algorithms/{public['id']}/images/train/pull", {"reference": "a/b:1"}),
    ]:
        code, err = await users.bob(method, path, body)
        assert (code, err["error"]) == (403, "forbidden"), (method, path)
    # an upload is refused from its headers, before the body is stored
    code, err = await upload(users.bob, public["id"], "train", image_tar(tmp_path / "t.tar"))
    assert (code, err["error"]) == (403, "forbidden")
    assert users.workbench.algorithms.get(users.workbench.users.find("alice"), public["id"])


async def test_errors_are_json(users, tmp_path):
    for body, status, words in [
        ({**BAYES, "visibility": "preset"}, 403, "Only admins"),
        ({**BAYES, "sub_purpose": "ner", "purpose": "image"}, 400, "does not belong"),
        ({**BAYES, "train": {"env": {"PORT": {"type": "int"}}}}, 400, "PORT is set by the"),
        ({**BAYES, "train": {"env": {"E": {"type": "int", "default": "x"}}}}, 400, "whole"),
        ({**BAYES, "colour": "red"}, 400, "Extra inputs"),
    ]:
        code, err = await users.bob("POST", f"{API}/algorithms", body)
        assert code == status and words in err["message"], (body, err)
        assert set(err) == {"error", "message", "details"}
    code, err = await users.bob("GET", f"{API}/algorithms", params={"visibility": "everyone"})
    assert (code, err["error"]) == (400, "invalid_input")
    _, algo = await users.bob("POST", f"{API}/algorithms", BAYES)
    aid = algo["id"]
    code, err = await upload(users.bob, aid, "train", image_tar(tmp_path / "x", tags=()))
    assert (code, err["error"]) == (400, "invalid_input") and "no tag" in err["message"]
    broken = image_tar(tmp_path / "y", leave_out_layer=True)
    code, err = await upload(users.bob, aid, "train", broken)
    assert (code, err["error"]) == (400, "archive_corrupt")
    assert err["details"]["missing"] == ["aaaa/layer.tar"]
    code, err = await users.bob(
        "POST", f"{API}/algorithms/{aid}/images/train/pull", {"reference": "a/b:1"}
    )
    assert (code, err["error"]) == (501, "backend_unsupported")
    assert (await users.bob("PUT", f"{API}/algorithms/{aid}/images/test", raw=b"x"))[0] == 404
    code, err = await users.bob("GET", f"{API}/algorithms/{aid}")
    assert err["train"]["state"] == "missing"


async def test_workspace_tars_are_checked_and_published(users):
    wb = users.workbench
    bob = wb.users.find("bob")
    ws = make_workspace(wb, bob, make_env(wb, wb.users.find("alice").id))
    folder = wb.workspaces.folder(ws) / "docker_image"
    image_tar(folder / "train-bayes.tar")
    image_tar(folder / "model.tar")

    code, report = await users.bob("GET", f"{API}/workspaces/{ws}/images/train-bayes.tar")
    assert code == 200 and report["ok"] and report["digest"] == digest_of()
    assert (report["kind"], report["name"], report["layers"]) == ("train", "bayes", 1)
    assert report["config"]["exposed_ports"] == [8080]
    code, report = await users.bob("GET", f"{API}/workspaces/{ws}/images/model.tar")
    assert code == 200 and not report["ok"] and not report["naming_ok"]
    code, err = await users.bob("GET", f"{API}/workspaces/{ws}/images/..%2Fcode%2Fx.tar")
    assert (code, err["error"]) == (400, "invalid_input")
    assert (await users.alice("GET", f"{API}/workspaces/{ws}/images/model.tar"))[0] == 404

    _, algo = await users.bob("POST", f"{API}/algorithms", BAYES)
    path = f"{API}/algorithms/{algo['id']}/images/train/from-workspace"
    code, err = await users.bob("POST", path, {"workspace_id": ws, "filename": "model.tar"})
    assert (code, err["error"]) == (400, "invalid_input") and "train-<name>.tar" in err["message"]
    code, info = await users.bob("POST", path, {"workspace_id": ws, "filename": "train-bayes.tar"})
    assert (code, info["train"]["state"]) == (202, "loading")
    info = await loaded(users.bob, algo["id"], "train")
    assert info["train"]["state"] == "ready"
    assert info["environment_id"] == wb.workspaces.get(bob, ws).environment_id


async def test_the_client_algorithms_api(users, tmp_path):
    client = WorkbenchClient(f"http://localhost:{users.port}{users.base_url}", users.bob.token)
    loop = asyncio.get_running_loop()

    def scenario() -> list[str]:
        seen = []
        algo = client.algorithms.create(**BAYES)
        seen.append(algo.state)
        with pytest.raises(Conflict, match="training image is missing"):
            client.algorithms.publish(algo.id)
        sent: list[int] = []
        tar = image_tar(tmp_path / "train.tar")
        info = client.algorithms.upload_image(
            algo.id, "train", tar, progress=lambda n, _: sent.append(n)
        )
        assert sent[-1] == tar.stat().st_size and info.train.digest == digest_of()
        seen.append(client.algorithms.publish(algo.id).state)
        assert [a.id for a in client.algorithms.list(state="online")] == [algo.id]
        seen.append(client.algorithms.take_offline(algo.id).state)
        updated = client.algorithms.update(algo.id, description="updated")
        assert updated.description == "updated" and client.algorithms.get(algo.id) == updated
        with pytest.raises(InvalidInput, match="reference: String should match pattern"):
            client.algorithms.pull_image(algo.id, "train", "--help")
        client.algorithms.delete(algo.id)
        return seen

    try:
        states = await loop.run_in_executor(None, scenario)
    finally:
        client.close()
    assert states == ["draft", "online", "offline"]


@pytest.mark.docker
async def test_a_real_docker_save_tar_uploads(users, tmp_path, docker_backend: DockerBackend):
    """A tar made by the Docker Engine (FROM scratch: no base image needed), streamed up."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello\n")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /\nCMD ["/hello"]\n')
    tag = f"wbtest-{uuid.uuid4().hex[:8]}/hello:1"
    tar = tmp_path / "train-hello.tar"
    try:
        list(docker_backend.build_image(context, tag))
        image_id = docker_backend.inspect_image(tag).id
        docker_backend.save_image(tag, tar)
    finally:
        docker_backend.remove_image(tag)
    _, algo = await users.bob("POST", f"{API}/algorithms", BAYES)
    code, info = await upload(users.bob, algo["id"], "train", tar)
    assert code == 202, info
    image = (await loaded(users.bob, algo["id"], "train"))["train"]
    assert (image["state"], image["digest"], image["tags"]) == ("ready", image_id, [tag])
    assert image["config"]["cmd"] == ["/hello"] and image["size"] == tar.stat().st_size
    assert re.fullmatch(rf"workbench/algo-{algo['id']}-train:{image_id[7:19]}", image["image_ref"])
