"""Workspace routes through a real Jupyter server (on the fake backend; the Docker Engine
is exercised by tests/backends and the workspace integration tests)."""

from __future__ import annotations

import pytest

from tests.archives import write_zip, zip_slip
from tests.conftest import add_environment

API = "workbench/api/v1"


@pytest.fixture
def env_id(users):
    wb = users.workbench
    env_id = add_environment(
        wb, name="python", framework="python", image_ref="wb/env:1", owner_id=1, visibility="preset"
    )
    wb.backend().add_image("wb/env:1", exposed_ports=[8888])
    return env_id


def body(env_id, **kw):
    return {
        "name": "ws",
        "purpose": "text",
        "sub_purpose": "classification",
        "environment_id": env_id,
        **kw,
    }


async def test_workspace_lifecycle(users, env_id):
    code, ws = await users.bob("POST", f"{API}/workspaces", body(env_id))
    assert code == 201 and ws["state"] == "stopped" and ws["code"] == {"kind": "sample"}
    wid = ws["id"]
    code, listed = await users.bob("GET", f"{API}/workspaces")
    assert [w["id"] for w in listed] == [wid]
    code, started = await users.bob("POST", f"{API}/workspaces/{wid}/start")
    assert (code, started["state"]) == (200, "running")
    code, stopped = await users.bob("POST", f"{API}/workspaces/{wid}/stop")
    assert stopped["state"] == "stopped"
    assert (await users.bob("DELETE", f"{API}/workspaces/{wid}"))[0] == 204
    assert (await users.bob("GET", f"{API}/workspaces/{wid}"))[0] == 404


async def test_bad_requests(users, env_id):
    for fields, status, error in [
        ({"environment_id": 424242}, 404, "not_found"),
        ({"resources": {"cpus": 1000}}, 400, "invalid_input"),
        ({"code": {"kind": "git", "url": "not a url"}}, 400, "invalid_input"),
        ({"code": {"kind": "teleport"}}, 400, "invalid_input"),
        (
            {"code": {"kind": "scaffold", "prefix": "Bad Prefix", "api_names": ["x"]}},
            400,
            "invalid_input",
        ),
    ]:
        code, err = await users.bob("POST", f"{API}/workspaces", body(env_id, **fields))
        assert (code, err["error"]) == (status, error), fields
    assert (await users.bob("GET", f"{API}/workspaces"))[1] == []


async def test_others_cannot_open_or_change_it(users, env_id):
    _, ws = await users.alice("POST", f"{API}/workspaces", body(env_id))
    wid = ws["id"]
    for method, path in [
        ("GET", f"{API}/workspaces/{wid}"),
        ("POST", f"{API}/workspaces/{wid}/start"),
        ("POST", f"{API}/workspaces/{wid}/stop"),
        ("DELETE", f"{API}/workspaces/{wid}"),
        ("POST", f"{API}/workspaces/{wid}/members"),
    ]:
        code, err = await users.bob(
            method, path, {"username": "bob"} if "members" in path else None
        )
        assert (code, err["error"]) == (404, "not_found"), (method, path)


async def test_code_upload_replaces_code_all_or_nothing(users, env_id, tmp_path):
    _, ws = await users.bob("POST", f"{API}/workspaces", body(env_id))
    wid = ws["id"]
    good = write_zip(tmp_path / "c.zip", {"proj/app.py": b"print(1)\n"})
    code, _ = await users.bob("PUT", f"{API}/workspaces/{wid}/code", raw=good.read_bytes())
    assert code == 200
    folder = users.workbench.workspaces.folder(wid) / "code"
    assert [p.name for p in folder.iterdir()] == ["proj"]
    code, err = await users.bob(
        "PUT", f"{API}/workspaces/{wid}/code", raw=zip_slip(tmp_path / "s.zip").read_bytes()
    )
    assert (code, err["error"]) == (400, "archive_unsafe")
    assert [p.name for p in folder.iterdir()] == ["proj"]
    code, err = await users.alice("PUT", f"{API}/workspaces/{wid}/code", raw=good.read_bytes())
    assert code == 404


async def test_starting_installs_a_kernelspec_and_deleting_removes_it(users, env_id):
    from jupyter_client.kernelspec import KernelSpecManager

    from workbench_ext.kernels import kernelspec_name

    _, ws = await users.bob("POST", f"{API}/workspaces", body(env_id, name="kern"))
    await users.bob("POST", f"{API}/workspaces/{ws['id']}/start")
    specs = KernelSpecManager().find_kernel_specs()
    assert kernelspec_name(ws["id"]) in specs
    await users.bob("DELETE", f"{API}/workspaces/{ws['id']}")
    assert kernelspec_name(ws["id"]) not in KernelSpecManager().find_kernel_specs()


async def test_download_code_and_model_as_zips(users, env_id, tmp_path):
    import io
    import zipfile

    _, ws = await users.bob(
        "POST",
        f"{API}/workspaces",
        body(env_id, code={"kind": "scaffold", "prefix": "demo", "api_names": ["classify"]}),
    )
    code, raw = await users.bob("GET", f"{API}/workspaces/{ws['id']}/download/code")
    assert code == 200
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert "code/README.md" in names and "code/demo-api/api.py" in names
    model_dir = users.workbench.workspaces.folder(ws["id"]) / "model"
    (model_dir / "weights.bin").write_bytes(b"\1\2\3")
    (model_dir / "escape").symlink_to("/etc/passwd")
    code, raw = await users.bob("GET", f"{API}/workspaces/{ws['id']}/download/model")
    archive = zipfile.ZipFile(io.BytesIO(raw))
    assert archive.namelist() == ["model/weights.bin"]
    assert archive.read("model/weights.bin") == b"\1\2\3"
    assert (await users.alice("GET", f"{API}/workspaces/{ws['id']}/download/code"))[0] == 404
    assert (await users.bob("GET", f"{API}/workspaces/{ws['id']}/download/secrets"))[0] == 404
    assert list((users.workbench.store.root / "tmp").glob("*.zip")) == []


async def test_the_workspace_token_acts_as_the_owner_but_manages_no_accounts(users, env_id):
    from tests.rest.conftest import Api

    _, ws = await users.bob("POST", f"{API}/workspaces", body(env_id, name="scoped"))
    await users.bob("POST", f"{API}/workspaces/{ws['id']}/start")
    fake = users.workbench.backend()
    run = fake.list({"workbench.workspace": str(ws["id"])})[0]
    inside = Api(users.bob.fetch, fake._runs[run.id].spec.env["WORKBENCH_TOKEN"], "bob")
    code, me = await inside("GET", f"{API}/me")
    assert (code, me["username"]) == (200, "bob")
    assert (await inside("GET", f"{API}/workspaces/{ws['id']}"))[0] == 200
    for method, path, payload in [
        ("POST", f"{API}/tokens", {"name": "escalate"}),
        ("POST", f"{API}/teams", {"name": "t"}),
        ("POST", f"{API}/users", {"username": "x"}),
    ]:
        code, err = await inside(method, path, payload)
        assert (code, err["error"]) == (403, "forbidden"), path
        assert "workspace:" in err["message"]
    await users.bob("POST", f"{API}/workspaces/{ws['id']}/stop")
    assert (await inside("GET", f"{API}/me"))[0] == 401
