"""Authentication and identity on the REST API."""

from __future__ import annotations

from tests.rest.conftest import Api
from workbench_ext.handlers import (
    algorithms,
    builds,
    datasets,
    environments,
    jobs,
    models,
    services,
    training,
    workspaces,
)
from workbench_ext.handlers import users as users_handlers

ROUTES = (
    datasets.handlers
    + users_handlers.handlers
    + workspaces.handlers
    + environments.handlers
    + builds.handlers
    + algorithms.handlers
    + training.handlers
    + models.handlers
    + services.handlers
    + jobs.handlers
)
#: each route's capture groups, as the OpenAPI document names them and as a concrete value
GROUPS = {
    r"(\d+)": ("{id}", "1"),
    "(train|test)": ("{split}", "train"),
    "(train|predict)": ("{kind}", "train"),
    "(.+)": ("{path}", "x.tar"),
    "([a-z0-9][a-z0-9_.-]*)": ("{username}", "bob"),
    "(code|model)": ("{folder}", "code"),
    "([^/]+)": ("{key}", "stage"),
    "([A-Za-z][A-Za-z0-9_.-]*)": ("{alias}", "champion"),
}


def _methods(handler: type) -> set[str]:
    return {m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m.lower() in handler.__dict__}


def _shape(pattern: str, concrete: bool = False) -> str:
    for group, (name, value) in GROUPS.items():
        pattern = pattern.replace(group, value if concrete else name)
    return pattern


async def test_every_route_needs_authentication(users, jp_fetch):
    anonymous = Api(jp_fetch, "", "")
    calls = [("GET", "workbench/api/v1/me"), ("GET", "workbench/api/v1/openapi.json")]
    calls += [
        (method, _shape(pattern, concrete=True).lstrip("/"))
        for pattern, handler in ROUTES
        for method in sorted(_methods(handler))
    ]
    assert len(calls) > 60
    for method, path in calls:
        code, body = await anonymous(method, path, headers={"Authorization": ""})
        assert code == 401, (method, path)
        assert body["error"] == "unauthenticated"
        assert "Authorization: token" in body["message"]


async def test_unknown_and_revoked_tokens_are_refused(users):
    bad = Api(users.alice.fetch, "wb_notarealtoken", "?")
    code, body = await bad("GET", "workbench/api/v1/me")
    assert (code, body["error"]) == (401, "unauthenticated")
    assert "unknown or revoked" in body["message"]

    code, created = await users.bob("POST", "workbench/api/v1/tokens", {"name": "laptop"})
    assert code == 201 and created["secret"].startswith("wb_")
    laptop = Api(users.bob.fetch, created["secret"], "bob")
    assert (await laptop("GET", "workbench/api/v1/me"))[1]["username"] == "bob"
    code, _ = await users.bob("DELETE", f"workbench/api/v1/tokens/{created['id']}")
    assert code == 204
    assert (await laptop("GET", "workbench/api/v1/me"))[0] == 401


async def test_tokens_are_stored_hashed(users):
    _code, created = await users.bob("POST", "workbench/api/v1/tokens", {"name": "x"})
    import sqlalchemy as sa

    from workbench.registry.models import ApiToken

    with users.workbench.registry.session() as s:
        stored = s.scalars(sa.select(ApiToken.token_hash)).all()
    assert created["secret"] not in stored
    assert all(len(h) == 64 for h in stored)


async def test_a_workbench_token_does_not_open_the_rest_of_jupyter(users):
    code, _ = await users.bob("GET", "api/contents")
    assert code == 403
    code, _ = await users.bob("GET", "api/kernels")
    assert code == 403


async def test_the_jupyter_login_acts_as_the_server_owner(users):
    code, me = await users.owner("GET", "workbench/api/v1/me")
    assert code == 200
    assert me["username"] == "owner"
    assert me["role"] == "admin"  # the first user of a registry without admins


async def test_me_tokens_and_user_admin(users):
    code, me = await users.alice("GET", "workbench/api/v1/me")
    assert (code, me["username"], me["role"]) == (200, "alice", "admin")
    code, body = await users.bob("POST", "workbench/api/v1/users", {"username": "eve"})
    assert (code, body["error"]) == (403, "forbidden")
    code, body = await users.alice("POST", "workbench/api/v1/users", {"username": "eve"})
    assert code == 201 and body["username"] == "eve"
    code, body = await users.alice("POST", "workbench/api/v1/users", {"username": "Bad Name"})
    assert code == 400 and "Invalid username" in body["message"]


async def test_unknown_routes_are_json_404(users):
    code, body = await users.bob("GET", "workbench/api/v1/nothing/here")
    assert code == 404 and body["error"] == "not_found"
    assert "openapi.json" in body["message"]


async def test_openapi_document_lists_every_route(users, jp_serverapp):
    code, doc = await users.bob("GET", "workbench/api/v1/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.")
    assert "DatasetInfo" in doc["components"]["schemas"]
    documented = {(p, meth) for p, ops in doc["paths"].items() for meth in ops}
    for pattern, handler in ROUTES:
        for method in _methods(handler):
            assert (_shape(pattern), method.lower()) in documented, (pattern, method)


async def test_teams(users):
    code, team = await users.alice("POST", "workbench/api/v1/teams", {"name": "vision"})
    assert code == 201 and team["members"] == {"alice": "admin"}
    code, err = await users.bob(
        "POST", f"workbench/api/v1/teams/{team['id']}/members", {"username": "bob"}
    )
    assert code == 404  # not a member: the team does not exist for bob
    code, team = await users.alice(
        "POST", f"workbench/api/v1/teams/{team['id']}/members", {"username": "bob"}
    )
    assert code == 200 and team["members"] == {"alice": "admin"} and team["invited"] == ["bob"]
    _, [invitation] = await users.bob("GET", "workbench/api/v1/invitations")
    code, accepted = await users.bob(
        "POST", f"workbench/api/v1/invitations/{invitation['id']}/accept"
    )
    assert code == 200 and accepted["state"] == "accepted"
    _, [team] = await users.alice("GET", "workbench/api/v1/teams")
    assert team["members"] == {"alice": "admin", "bob": "member"} and team["invited"] == []
    code, err = await users.bob(
        "POST", f"workbench/api/v1/teams/{team['id']}/members", {"username": "owner"}
    )
    assert (code, err["error"]) == (403, "forbidden")
    code, mine = await users.bob("GET", "workbench/api/v1/teams")
    assert [t["name"] for t in mine] == ["vision"]
    code, err = await users.alice("POST", "workbench/api/v1/teams", {"name": "vision"})
    assert (code, err["error"]) == (409, "conflict")
    code, err = await users.alice(
        "POST", f"workbench/api/v1/teams/{team['id']}/members", {"username": "nobody"}
    )
    assert code == 404 and "nobody" in err["message"]
