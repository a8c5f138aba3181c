"""A workspace's token does what the workspace needs and no more (issue 15, point 5).

Through REST on a real Jupyter server (the fake backend: the tokens are the server's, the
container's token is the one handed to its run), with real tokens: the container's token
(the owner's, scope ``workspace:<id>``) is refused every route that is not on the
workspace tokens' list (minting tokens, teams, deleting a model, changing a visibility,
rotating a service key, another workspace, a dataset it does not mount, a public create)
and gets its own workspace, its mounted dataset and an allowed create; a member's token
(what their kernel gets) acts as the member, never as the owner, and dies when the member
leaves or the workspace stops. Every refusal here was a 2xx, or a 404 of a lookup, before.
"""

from __future__ import annotations

import pytest

from tests.conftest import add_environment, add_online_dataset
from tests.rest.conftest import Api, jp_server_config, users  # noqa: F401 (fixtures)
from workbench.datasets.schemas import DatasetCreate
from workbench.registry.models import Model, ModelVersion, WorkspaceMember
from workbench.users import Actor

API = "workbench/api/v1"


@pytest.fixture
def setup(users, tmp_path):  # noqa: F811 (the fixture imported above)
    """alice's workspace mounting her dataset, bob its member; alice's private model."""
    wb = users.workbench
    alice = wb.users.find("alice")
    bob = wb.users.find("bob")
    assert alice is not None and bob is not None
    env_id = add_environment(
        wb, name="python", framework="python", image_ref="wb/env:1", owner_id=1, visibility="preset"
    )
    wb.backend().add_image("wb/env:1", exposed_ports=[8888])
    mounted = add_online_dataset(wb, alice, tmp_path, {"a": 1, "b": 1})
    other = wb.datasets.create(
        alice,
        DatasetCreate(name="other", purpose="image", sub_purpose="classification", format="dir"),
    ).id
    return wb, alice, bob, env_id, mounted, other


async def start_workspace(users, env_id: int, dataset_id: int | None, name: str = "ws") -> int:  # noqa: F811
    body = {
        "name": name,
        "purpose": "image",
        "sub_purpose": "classification",
        "environment_id": env_id,
        "dataset_id": dataset_id,
    }
    code, ws = await users.alice("POST", f"{API}/workspaces", body)
    assert code == 201, ws
    code, ws = await users.alice("POST", f"{API}/workspaces/{ws['id']}/start")
    assert code == 200, ws
    return ws["id"]


def container_token(users, workspace_id: int) -> Api:  # noqa: F811
    """The ``WORKBENCH_TOKEN`` the workspace's container got at its start."""
    fake = users.workbench.backend()
    (run,) = fake.list({"workbench.workspace": str(workspace_id)})
    return Api(users.alice.fetch, fake._runs[run.id].spec.env["WORKBENCH_TOKEN"], "alice")


def private_model(wb, owner: Actor, name: str) -> tuple[int, int]:
    with wb.registry.session() as s:
        model = Model(name=name, owner_id=owner.id, visibility="private", last_version=1)
        s.add(model)
        s.flush()
        version = ModelVersion(model_id=model.id, version=1)
        s.add(version)
        s.flush()
        return model.id, version.id


def add_member(wb, workspace_id: int, member: Actor) -> None:
    """Membership as a row: how a member joins (invitations) is not what is tested here."""
    with wb.registry.session() as s:
        s.add(WorkspaceMember(workspace_id=workspace_id, user_id=member.id))


async def test_the_container_token_is_refused_what_the_workspace_does_not_need(users, setup):  # noqa: F811
    wb, alice, _, env_id, mounted, other = setup
    model_id, version_id = private_model(wb, alice, "mine")
    ws = await start_workspace(users, env_id, mounted)
    elsewhere = await start_workspace(users, env_id, None, name="second")
    inside = container_token(users, ws)
    tokens_before = (await users.alice("GET", f"{API}/tokens"))[1]
    for method, path, payload in [
        ("POST", "tokens", {"name": "escalate"}),  # mint a full token
        ("GET", "tokens", None),
        ("DELETE", "tokens/1", None),
        ("POST", "teams", {"name": "t"}),  # manage teams
        ("POST", "teams/1/members", {"username": "bob"}),
        ("POST", "users", {"username": "mallory"}),
        ("DELETE", f"models/{model_id}", None),  # delete a model
        ("DELETE", f"model-versions/{version_id}", None),
        ("PATCH", f"models/{model_id}", {"visibility": "public"}),  # change a visibility
        ("PATCH", f"model-versions/{version_id}", {"description": "x"}),
        ("POST", "services/1/key", None),  # rotate a service key
        ("POST", "services/1/scale", {"replicas": 9}),
        ("DELETE", "services/1", None),
        ("GET", f"workspaces/{elsewhere}", None),  # another workspace
        ("GET", f"workspaces/{elsewhere}/download/code", None),
        ("POST", f"workspaces/{elsewhere}/builds", {}),
        ("GET", "workspaces", None),
        ("POST", f"workspaces/{ws}/members", {"username": "bob"}),  # share it
        ("POST", f"workspaces/{ws}/stop", None),
        ("DELETE", f"workspaces/{ws}", None),
        ("GET", f"datasets/{other}", None),  # a dataset it does not mount
        ("GET", "datasets", None),
        ("DELETE", f"datasets/{mounted}", None),  # its own dataset, read-only
        ("POST", f"datasets/{mounted}/offline", None),
        ("POST", "algorithms", {"name": "a", "purpose": "image", "visibility": "public"}),
        ("POST", "services", {"version_id": version_id}),  # deploy
        ("POST", "training/tasks", {}),
        ("POST", "jobs/1/cancel", None),
    ]:
        code, err = await inside(method, f"{API}/{path}", payload)
        assert (code, err["error"]) == (403, "forbidden"), (method, path, err)
        assert f"workspace:{ws}" in err["message"], err
    # nothing changed
    assert (await users.alice("GET", f"{API}/models/{model_id}"))[1]["visibility"] == "private"
    ids = [t["id"] for t in (await users.alice("GET", f"{API}/tokens"))[1]]
    assert ids == [t["id"] for t in tokens_before]
    with wb.registry.session() as s:
        assert s.get(Model, model_id) is not None


async def test_the_container_token_reads_its_workspace_and_dataset_and_makes_private_things(
    users,  # noqa: F811
    setup,
):
    wb, alice, _, env_id, mounted, _ = setup
    model_id, version_id = private_model(wb, alice, "mine")
    ws = await start_workspace(users, env_id, mounted)
    inside = container_token(users, ws)
    for path in [
        "me",
        f"workspaces/{ws}",
        f"workspaces/{ws}/download/code",
        f"workspaces/{ws}/images",
        f"datasets/{mounted}",
        f"datasets/{mounted}/samples/train",
        f"models/{model_id}",  # the owner's work: the container's token acts as the owner
        f"model-versions/{version_id}",
        "models",
        "environments",
        "jobs",
    ]:
        code, answer = await inside("GET", f"{API}/{path}")
        assert code == 200, (path, answer)
    code, algorithm = await inside(
        "POST",
        f"{API}/algorithms",
        {"name": "from-ws", "purpose": "image", "sub_purpose": "classification"},
    )
    assert code == 201, algorithm
    assert algorithm["visibility"] == "private"
    # listed: the owner sees the container's token with its scope
    code, tokens = await users.alice("GET", f"{API}/tokens")
    assert {"name": f"workspace {ws}", "scope": f"workspace:{ws}"} in [
        {"name": t["name"], "scope": t["scope"]} for t in tokens
    ]


async def test_a_members_token_acts_as_the_member_and_dies_when_they_leave(users, setup):  # noqa: F811
    wb, alice, bob, env_id, mounted, _ = setup
    alices_model, _ = private_model(wb, alice, "alices")
    bobs_model, _ = private_model(wb, bob, "bobs")
    ws = await start_workspace(users, env_id, mounted)
    add_member(wb, ws, bob)
    # what bob's kernel in the workspace gets (WorkspaceKernelProvisioner)
    token = wb.workspaces.kernel_token(bob, ws, "k1")
    as_bob = Api(users.bob.fetch, token.secret, "bob")
    code, me = await as_bob("GET", f"{API}/me")
    assert (code, me["username"]) == (200, "bob")
    assert (await as_bob("GET", f"{API}/workspaces/{ws}"))[0] == 200
    assert (await as_bob("GET", f"{API}/datasets/{mounted}"))[0] == 200
    assert (await as_bob("GET", f"{API}/models/{bobs_model}"))[0] == 200
    code, err = await as_bob("GET", f"{API}/models/{alices_model}")  # the owner's, private
    assert (code, err["error"]) == (404, "not_found")
    code, models = await as_bob("GET", f"{API}/models")
    assert [m["id"] for m in models] == [bobs_model]
    assert (await as_bob("DELETE", f"{API}/models/{bobs_model}"))[0] == 403  # even his own
    # listed: bob sees his workspace token with its scope; alice does not see it
    code, tokens = await users.bob("GET", f"{API}/tokens")
    assert {(t["name"], t["scope"]) for t in tokens} >= {
        (f"workspace {ws} kernel k1", f"workspace:{ws}")
    }
    code, tokens = await users.alice("GET", f"{API}/tokens")
    assert all("kernel" not in t["name"] for t in tokens)
    # bob leaves: his token dies, and so does the container's (he could have read it)
    inside = container_token(users, ws)
    assert (await inside("GET", f"{API}/me"))[0] == 200
    code, _ = await users.alice("DELETE", f"{API}/workspaces/{ws}/members/bob")
    assert code == 200
    code, err = await as_bob("GET", f"{API}/me")
    assert (code, err["error"]) == (401, "unauthenticated")
    assert (await inside("GET", f"{API}/me"))[0] == 401
    code, tokens = await users.bob("GET", f"{API}/tokens")
    assert [t["name"] for t in tokens] == ["t"]


async def test_a_members_token_dies_when_the_workspace_stops(users, setup):  # noqa: F811
    wb, _, bob, env_id, mounted, _ = setup
    ws = await start_workspace(users, env_id, mounted)
    add_member(wb, ws, bob)
    as_bob = Api(users.bob.fetch, wb.workspaces.kernel_token(bob, ws, "k1").secret, "bob")
    inside = container_token(users, ws)
    assert (await as_bob("GET", f"{API}/workspaces/{ws}"))[0] == 200
    code, _ = await users.bob("POST", f"{API}/workspaces/{ws}/stop")  # a member may stop it
    assert code == 200
    for api in (as_bob, inside):
        code, err = await api("GET", f"{API}/me")
        assert (code, err["error"]) == (401, "unauthenticated")


async def test_a_workspace_token_outliving_its_workspace_is_refused(users, setup):  # noqa: F811
    """A token whose workspace is no longer running (its container died: reconciliation
    marks it failed without revoking anything) opens nothing."""
    wb, _, _, env_id, mounted, _ = setup
    ws = await start_workspace(users, env_id, mounted)
    inside = container_token(users, ws)
    wb.workspaces._set_state(ws, "failed", "its container is gone; start it again", "")
    code, err = await inside("GET", f"{API}/workspaces/{ws}")
    assert (code, err["error"]) == (401, "unauthenticated")
    assert "not running" in err["message"]
