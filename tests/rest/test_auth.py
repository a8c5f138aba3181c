"""Authentication and identity on the REST API."""

from __future__ import annotations

import sys
from typing import Any

from tornado import web
from tornado.routing import Router

from tests.rest.conftest import Api
from workbench_ext.handlers.base import API, NotFoundHandler, WorkbenchHandler
from workbench_ext.routes import HTTP_METHODS, Route, api_routes, served

#: a concrete value for each kind of capture group of the routes
VALUES = {
    r"(\d+)": "1",
    "(train|test)": "train",
    "(train|predict)": "train",
    "(.+)": "x.tar",
    "(.*)": "nothing/here",
    "([a-z0-9][a-z0-9_.-]*)": "bob",
    "(code|model)": "code",
    "([^/]+)": "stage",
    "([A-Za-z][A-Za-z0-9_.-]*)": "champion",
}


def served_by(app: web.Application) -> list[tuple[str, type[WorkbenchHandler], str]]:
    """What the running server really serves under the API: each Workbench handler's
    pattern (the base URL and ``$`` taken off) and every method it answers (its own or
    inherited; not tornado's 405)."""
    found = []

    def walk(router: Router) -> None:
        for rule in getattr(router, "rules", []):
            target = rule.target
            if isinstance(target, type) and issubclass(target, WorkbenchHandler):
                pattern = rule.matcher.regex.pattern.removesuffix("$")
                pattern = pattern[pattern.index(API) :]
                for method in HTTP_METHODS:
                    if getattr(target, method) is not getattr(web.RequestHandler, method):
                        found.append((pattern, target, method))
            else:
                walk(target)

    walk(app.wildcard_router)
    walk(app.default_router)
    return found


def concrete(route: Route | tuple[str, Any, str]) -> str:
    pattern = route.pattern if isinstance(route, Route) else route[0]
    for group, value in VALUES.items():
        pattern = pattern.replace(group, value)
    return pattern.removesuffix("/?").lstrip("/")


async def test_every_method_the_server_serves_needs_authentication(users, jp_fetch, jp_serverapp):
    anonymous = Api(jp_fetch, "", "")
    calls = served_by(jp_serverapp.web_app)
    assert len(calls) > 100
    for pattern, _, method in calls:
        path = concrete((pattern, None, method))
        code, body = await anonymous(method.upper(), path, headers={"Authorization": ""})
        assert code == 401, (method, path)
        assert body["error"] == "unauthenticated"
        assert "Authorization: token" in body["message"]


def test_the_route_table_is_what_the_server_serves(jp_serverapp):
    real = {
        (pattern, handler, method)
        for pattern, handler, method in served_by(jp_serverapp.web_app)
        if handler is not NotFoundHandler  # the JSON 404 of any other path
    }
    table = {(route.pattern, route.handler, route.method) for route in served(api_routes())}
    assert real == table
    inherited = {
        (route.handler.__name__, route.method)
        for route in served(api_routes())
        if route.method not in route.handler.__dict__
    }
    # an inherited method would document several routes with one summary
    assert inherited == set()
    # a handler named in a traceback or a log is found under that name in its module
    misnamed = {
        (route.handler.__module__, route.handler.__name__)
        for route in served(api_routes())
        if getattr(sys.modules[route.handler.__module__], route.handler.__name__, None)
        is not route.handler
    }
    assert misnamed == set()


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


async def test_openapi_document_lists_every_served_method(users, jp_serverapp):
    code, doc = await users.bob("GET", "workbench/api/v1/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.")
    assert "DatasetInfo" in doc["components"]["schemas"]
    documented = {(p, meth) for p, ops in doc["paths"].items() for meth in ops}
    routes = served(api_routes())
    assert documented == {(route.template, route.method) for route in routes}
    stop = doc["paths"]["/workbench/api/v1/services/{service_id}/stop"]["post"]
    assert "202" in stop["responses"] and "Replicas to 0" in stop["summary"]


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
