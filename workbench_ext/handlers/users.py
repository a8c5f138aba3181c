"""/me, /tokens, /users (and their quotas), /teams and /invitations."""

from __future__ import annotations

from datetime import timedelta

from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web

from workbench import scopes
from workbench.enums import Role
from workbench.errors import NotFound, PermissionDenied
from workbench.schemas.invitations import InvitationInfo
from workbench.schemas.quotas import QuotaInfo, QuotaUpdate
from workbench.schemas.users import NewToken, NewUser, TeamInfo, TokenInfo, UserInfo
from workbench_ext.handlers.base import API, WorkbenchHandler, operation
from workbench_ext.handlers.resource import Resource, Schemas, Strict, service_call

#: the path parameter of one invitation's routes
INVITATION = {"invitation_id": int}


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    expires_in_days: int | None = Field(None, gt=0, le=3650)


class UserCreate(Strict):
    username: str
    role: Role = Role.MEMBER
    display_name: str = ""


class TeamCreate(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""


class MemberAdd(Strict):
    username: str


class UserHandlerBase(WorkbenchHandler):
    """Accounts, tokens, teams and invitations: only a full-scope token (a login's, or one
    from `workbench token create`) changes them."""

    auth_resource = "workbench:users"

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.current_user is not None and self.request.method != "GET":
            self.actor.require_full_scope()


class MeHandler(UserHandlerBase):
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    @operation("The user making the request", response=UserInfo)
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.get_user, self.actor.id))


class TokensHandler(UserHandlerBase):
    get = service_call(
        "My API tokens (secrets are never shown again)",
        lambda wb: wb.users.list_tokens,
        response=list[TokenInfo],
    )

    @operation("Create an API token", TokenCreate, NewToken, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(TokenCreate)
        expires = timedelta(days=spec.expires_in_days) if spec.expires_in_days else None
        token = await self.run(
            self.workbench.users.create_token, self.actor.id, spec.name, expires_in=expires
        )
        self.reply(token, status=201)


class TokenHandler(UserHandlerBase):
    delete = service_call(
        "Revoke one of my tokens",
        lambda wb: wb.users.revoke_token,
        status=204,
        path={"token_id": int},
    )


class UsersHandler(UserHandlerBase):
    @operation("All users", response=list[UserInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.list_users))

    @operation("Add a user (admins); the reply carries their first token", UserCreate, NewUser, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        if not self.actor.is_admin:
            raise PermissionDenied("Only admins can add users.")
        spec = self.parse(UserCreate)
        user = await self.run(
            self.workbench.users.add_user_with_token,
            spec.username,
            role=spec.role,
            display_name=spec.display_name,
        )
        self.reply(user, status=201)


class QuotaHandler(UserHandlerBase):
    """A user's quotas and what they use: anyone's for an admin, one's own for a user
    (another's is 404, as if the name did not exist); only admins set them."""

    @operation("A user's quotas and use (my own; anyone's for admins)", response=QuotaInfo)
    @web.authenticated
    @authorized
    async def get(self, username: str) -> None:
        if username != self.actor.username and not self.actor.is_admin:
            raise NotFound.entity("user", username)
        self.reply(await self.run(self.workbench.quotas.get, username))

    @operation(
        "Set a user's quotas (admins); a field given null goes back to the default",
        QuotaUpdate,
        QuotaInfo,
    )
    @web.authenticated
    @authorized
    async def put(self, username: str) -> None:
        if not self.actor.is_admin:
            raise PermissionDenied("Only admins can set quotas; ask one to raise yours.")
        update = self.parse(QuotaUpdate)
        self.reply(await self.run(self.workbench.quotas.set, username, update))


class TeamsHandler(UserHandlerBase):
    get = service_call("Teams I belong to", lambda wb: wb.users.list_teams, response=list[TeamInfo])
    post = service_call(
        "Create a team; I become its admin",
        lambda wb: wb.users.create_team,
        TeamCreate,
        TeamInfo,
        201,
        spread=True,
    )


class TeamMembersHandler(UserHandlerBase):
    post = service_call(
        "Invite someone (team admins); a member once they accept",
        lambda wb: wb.users.add_team_member,
        MemberAdd,
        TeamInfo,
        path={"team_id": int},
        spread=True,
    )


INVITATIONS = Resource("Invitation", UserHandlerBase, "invitations", INVITATION)
InvitationsHandler, InvitationHandler = INVITATIONS.standard(
    Schemas(InvitationInfo),
    {
        "list": "Invitations to teams and workspaces: to me, and those I sent",
        "delete": "Cancel an invitation (its inviter, the team's admins, the workspace's owner)",
    },
    methods={"delete": "cancel"},
)
InvitationAcceptHandler = INVITATIONS.action(
    "accept", "Accept an invitation to me: I join the team or the workspace", InvitationInfo
)
InvitationDeclineHandler = INVITATIONS.action(
    "decline", "Decline an invitation to me", InvitationInfo
)


handlers = [
    (rf"{API}/me", MeHandler),
    (rf"{API}/tokens", TokensHandler),
    (rf"{API}/tokens/(\d+)", TokenHandler),
    (rf"{API}/users", UsersHandler),
    (rf"{API}/users/([a-z0-9][a-z0-9_.-]*)/quota", QuotaHandler),
    (rf"{API}/teams", TeamsHandler),
    (rf"{API}/teams/(\d+)/members", TeamMembersHandler),
    (rf"{API}/invitations", InvitationsHandler),
    (rf"{API}/invitations/(\d+)", InvitationHandler),
    (rf"{API}/invitations/(\d+)/accept", InvitationAcceptHandler),
    (rf"{API}/invitations/(\d+)/decline", InvitationDeclineHandler),
]
