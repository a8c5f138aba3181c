"""Adding someone to a team or a workspace needs their acceptance (issue 15, point 8,
second half), tried through REST by ordinary users of a real server.

Before, a team admin's POST /teams/{id}/members made bob a member outright, and a
workspace's owner could then make him a member of her workspace: he was in a team and saw
a workspace (and its files, and its container) he never asked for. Now each makes an
invitation: until bob accepts, the team is not his (not listed, alice cannot share a
workspace with him through it) and the workspace is 404 to him; after he accepts he is a
member and sees them. Declining and cancelling leave nothing; carol cannot accept, decline
or cancel bob's invitation, nor see it.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.rest.conftest import Api
from tests.security.conftest import API, Tenants
from workbench.registry import models as m

pytestmark = [pytest.mark.docker]


async def carol(tenants: Tenants) -> Api:
    info = tenants.wb.users.add_user("carol")
    token = tenants.wb.users.create_token(info.id, "t").secret
    return Api(tenants.alice.fetch, token, "carol")


async def invitation_to(api: Api, kind: str, name: str) -> dict[str, Any]:
    code, invitations = await api("GET", f"{API}/invitations")
    assert code == 200
    [found] = [i for i in invitations if i["kind"] == kind and i["name"] == name]
    assert found["user"] == api.username and found["state"] == "pending"
    return found


def memberships(tenants: Tenants) -> tuple[int, int]:
    """Team and workspace member rows of bob."""
    bob = tenants.actors["bob"].id
    with tenants.wb.registry.session() as s:
        teams = s.scalar(
            sa.select(sa.func.count()).select_from(m.TeamMember).where(m.TeamMember.user_id == bob)
        )
        spaces = s.scalar(
            sa.select(sa.func.count())
            .select_from(m.WorkspaceMember)
            .where(m.WorkspaceMember.user_id == bob)
        )
        return teams, spaces


async def test_an_unaccepted_invitation_gives_nothing_and_an_accepted_one_membership(
    tenants: Tenants,
):
    alice, bob = tenants.alice, tenants.bob
    _, team = await alice("POST", f"{API}/teams", {"name": "vision"})
    code, team = await alice("POST", f"{API}/teams/{team['id']}/members", {"username": "bob"})
    assert code == 200 and team["members"] == {"alice": "admin"} and team["invited"] == ["bob"]
    assert (await bob("GET", f"{API}/teams"))[1] == []  # not his team yet
    _, ws = await alice(
        "POST",
        f"{API}/workspaces",
        {"name": "ws", "purpose": "text", "sub_purpose": "classification",
         "environment_id": tenants.python_env},
    )  # fmt: skip
    # sharing a workspace needs a shared team: an invitation is not one
    code, err = await alice("POST", f"{API}/workspaces/{ws['id']}/members", {"username": "bob"})
    assert code == 404 and "not in any of your teams" in err["message"]

    invitation = await invitation_to(bob, "team", "vision")
    assert invitation["inviter"] == "alice"
    code, accepted = await bob("POST", f"{API}/invitations/{invitation['id']}/accept")
    assert code == 200 and accepted["state"] == "accepted"
    assert [t["name"] for t in (await bob("GET", f"{API}/teams"))[1]] == ["vision"]

    code, shared = await alice("POST", f"{API}/workspaces/{ws['id']}/members", {"username": "bob"})
    assert code == 200 and shared["members"] == [] and shared["invited"] == ["bob"]
    for path in (f"workspaces/{ws['id']}", f"workspaces/{ws['id']}/download/code"):
        code, err = await bob("GET", f"{API}/{path}")
        assert (code, err["error"]) == (404, "not_found"), path
    assert ws["id"] not in [w["id"] for w in (await bob("GET", f"{API}/workspaces"))[1]]
    assert memberships(tenants) == (1, 0)

    invitation = await invitation_to(bob, "workspace", "ws")
    code, accepted = await bob("POST", f"{API}/invitations/{invitation['id']}/accept")
    assert code == 200 and accepted["kind"] == "workspace"
    code, seen = await bob("GET", f"{API}/workspaces/{ws['id']}")
    assert code == 200 and seen["members"] == ["bob"] and seen["invited"] == []
    assert (await bob("GET", f"{API}/workspaces/{ws['id']}/download/code"))[0] == 200
    assert memberships(tenants) == (1, 1)
    assert (await bob("GET", f"{API}/invitations"))[1] == []


async def test_declined_and_cancelled_invitations_leave_nothing(tenants: Tenants):
    alice, bob = tenants.alice, tenants.bob
    _, team = await alice("POST", f"{API}/teams", {"name": "nlp"})
    members = f"{API}/teams/{team['id']}/members"
    await alice("POST", members, {"username": "bob"})
    invitation = await invitation_to(bob, "team", "nlp")
    code, declined = await bob("POST", f"{API}/invitations/{invitation['id']}/decline")
    assert code == 200 and declined["state"] == "declined"
    assert (await bob("GET", f"{API}/invitations"))[1] == []
    assert (await alice("GET", f"{API}/invitations"))[1] == []
    assert (await bob("GET", f"{API}/teams"))[1] == []
    code, _ = await bob("POST", f"{API}/invitations/{invitation['id']}/accept")
    assert code == 404  # gone: accepting it later does nothing

    await alice("POST", members, {"username": "bob"})  # again, then withdrawn
    invitation = await invitation_to(bob, "team", "nlp")
    code, err = await bob("DELETE", f"{API}/invitations/{invitation['id']}")
    assert code == 403 and "decline it" in err["message"]  # his to decline, not cancel
    code, _ = await alice("DELETE", f"{API}/invitations/{invitation['id']}")
    assert code == 204
    assert (await bob("GET", f"{API}/invitations"))[1] == []
    code, _ = await bob("POST", f"{API}/invitations/{invitation['id']}/accept")
    assert code == 404
    _, [team] = await alice("GET", f"{API}/teams")
    assert team["members"] == {"alice": "admin"} and team["invited"] == []
    assert memberships(tenants) == (0, 0)


async def test_a_third_user_cannot_answer_or_see_someone_elses_invitation(tenants: Tenants):
    alice, bob = tenants.alice, tenants.bob
    eve = await carol(tenants)
    _, team = await alice("POST", f"{API}/teams", {"name": "audio"})
    await alice("POST", f"{API}/teams/{team['id']}/members", {"username": "bob"})
    invitation = await invitation_to(bob, "team", "audio")
    assert (await eve("GET", f"{API}/invitations"))[1] == []
    for method, path in (
        ("POST", f"invitations/{invitation['id']}/accept"),
        ("POST", f"invitations/{invitation['id']}/decline"),
        ("DELETE", f"invitations/{invitation['id']}"),
    ):
        code, err = await eve(method, f"{API}/{path}")
        assert (code, err["error"]) == (404, "not_found"), path
    # nor invite herself into a team she does not administer
    code, _ = await eve("POST", f"{API}/teams/{team['id']}/members", {"username": "carol"})
    assert code == 404
    assert (await eve("GET", f"{API}/teams"))[1] == []
    # bob's invitation is still there, his to answer
    assert (await invitation_to(bob, "team", "audio"))["id"] == invitation["id"]
    assert memberships(tenants) == (0, 0)
