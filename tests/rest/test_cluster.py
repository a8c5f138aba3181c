"""The cluster routes through a real Jupyter server on the fake backend (one node, this
host): everyone lists the nodes and sees their own runs on each, others' only counted; an
admin sees all; draining is an admin's, and a backend with one node says it cannot. The
swarm's nodes and a real drain are in tests/cluster/test_cluster_nodes.py."""

from __future__ import annotations

from tests.rest.conftest import Api
from tests.rest.test_workspaces import body, env_id  # noqa: F401  (fixture)
from workbench.backends.base import MANAGED_LABEL, RunSpec
from workbench.workspaces.service import WORKSPACE_LABEL

API = "workbench/api/v1"


async def test_each_user_sees_their_own_runs_on_a_node_and_an_admin_all(users, env_id):  # noqa: F811
    code, ws = await users.bob("POST", f"{API}/workspaces", body(env_id, name="bobs"))
    assert code == 201
    assert (await users.bob("POST", f"{API}/workspaces/{ws['id']}/start"))[0] == 200
    # another Workbench's run on the same engine, claiming the same workspace: not counted
    wb = users.workbench
    wb.backend().run(
        RunSpec(
            name="elsewhere",
            image="wb/env:1",
            labels={MANAGED_LABEL: "/another/home", WORKSPACE_LABEL: str(ws["id"])},
        )
    )
    carol = Api(
        users.bob.fetch, wb.users.create_token(wb.users.add_user("carol").id, "t").secret, "carol"
    )

    code, (node,) = await users.bob("GET", f"{API}/cluster/nodes")
    assert code == 200
    assert node["role"] == "host" and node["availability"] == "active" and node["cpus"] >= 1
    assert node["runs"] == [
        {"kind": "workspace", "id": ws["id"], "name": "workspace bobs", "owner": "bob"}
    ]
    assert node["others"] == 0

    code, (seen_by_carol,) = await carol("GET", f"{API}/cluster/nodes")
    assert (seen_by_carol["runs"], seen_by_carol["others"]) == ([], 1)
    # a member learns nothing of use only to one who would attack the node
    assert node["engine"] == seen_by_carol["engine"] == "" and node["address"] == ""

    code, (seen_by_admin,) = await users.alice("GET", f"{API}/cluster/nodes")
    assert [r["owner"] for r in seen_by_admin["runs"]] == ["bob"]
    assert seen_by_admin["engine"] == "the fake backend"


async def test_draining_is_an_admins_and_needs_a_node_to_move_to(users):
    code, (node,) = await users.owner("GET", f"{API}/cluster/nodes")
    path = f"{API}/cluster/nodes/{node['id']}/availability"

    code, err = await users.bob("POST", path, {"availability": "drain"})
    assert (code, err["error"]) == (403, "forbidden")
    code, err = await users.owner("POST", path, {"availability": "away"})
    assert (code, err["error"]) == (400, "invalid_input")
    code, err = await users.owner("POST", path, {"availability": "drain"})
    assert (code, err["error"]) == (501, "backend_unsupported")
    assert "no other node to move its work to" in err["message"] and "swarm" in err["message"]
