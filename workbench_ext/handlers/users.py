"""/me, /tokens, /users (and their quotas), /teams and /invitations."""

from __future__ import annotations

from datetime import timedelta

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from workbench import scopes
from workbench.enums import Role
from workbench.errors import NotFound, PermissionDenied
from workbench.schemas.invitations import InvitationInfo
from workbench.schemas.quotas import QuotaInfo, QuotaUpdate
from workbench.schemas.users import NewToken, NewUser, TeamInfo, TokenInfo, UserInfo
from workbench_ext.handlers.base import API, WorkbenchHandler, operation


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    expires_in_days: int | None = Field(None, gt=0, le=3650)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    role: Role = Role.MEMBER
    display_name: str = ""


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str


class MeHandler(WorkbenchHandler):
    auth_resource = "workbench:users"
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    @operation("The user making the request", response=UserInfo)
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.get_user, self.actor.id))


class TokensHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("My API tokens (secrets are never shown again)", response=list[TokenInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.list_tokens, self.actor))

    @operation("Create an API token", TokenCreate, NewToken, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.actor.require_full_scope()
        spec = self.parse(TokenCreate)
        expires = timedelta(days=spec.expires_in_days) if spec.expires_in_days else None
        token = await self.run(
            self.workbench.users.create_token, self.actor.id, spec.name, expires_in=expires
        )
        self.reply(token, status=201)


class TokenHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("Revoke one of my tokens", status=204)
    @web.authenticated
    @authorized
    async def delete(self, token_id: str) -> None:
        self.actor.require_full_scope()
        await self.run(self.workbench.users.revoke_token, self.actor, int(token_id))
        self.set_status(204)
        self.finish()


class UsersHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("All users", response=list[UserInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.list_users))

    @operation("Add a user (admins); the reply carries their first token", UserCreate, NewUser, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.actor.require_full_scope()
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


class QuotaHandler(WorkbenchHandler):
    """A user's quotas and what they use: anyone's for an admin, one's own for a user
    (another's is 404, as if the name did not exist); only admins set them."""

    auth_resource = "workbench:users"

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
        self.actor.require_full_scope()
        if not self.actor.is_admin:
            raise PermissionDenied("Only admins can set quotas; ask one to raise yours.")
        update = self.parse(QuotaUpdate)
        self.reply(await self.run(self.workbench.quotas.set, username, update))


class TeamsHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("Teams I belong to", response=list[TeamInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.users.list_teams, self.actor))

    @operation("Create a team; I become its admin", TeamCreate, TeamInfo, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.actor.require_full_scope()
        spec = self.parse(TeamCreate)
        team = await self.run(
            self.workbench.users.create_team, self.actor, spec.name, spec.description
        )
        self.reply(team, status=201)


class TeamMembersHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("Invite someone (team admins); a member once they accept", MemberAdd, TeamInfo)
    @web.authenticated
    @authorized
    async def post(self, team_id: str) -> None:
        self.actor.require_full_scope()
        spec = self.parse(MemberAdd)
        team = await self.run(
            self.workbench.users.add_team_member, self.actor, int(team_id), spec.username
        )
        self.reply(team)


class InvitationsHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation(
        "Invitations to teams and workspaces: to me, and those I sent",
        response=list[InvitationInfo],
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.workbench.invitations.list, self.actor))


class InvitationHandler(WorkbenchHandler):
    """Cancel an invitation (its inviter, the team's admins, the workspace's owner)."""

    auth_resource = "workbench:users"

    @operation(
        "Cancel an invitation (its inviter, the team's admins, the workspace's owner)", status=204
    )
    @web.authenticated
    @authorized
    async def delete(self, invitation_id: str) -> None:
        self.actor.require_full_scope()
        await self.run(self.workbench.invitations.cancel, self.actor, int(invitation_id))
        self.set_status(204)
        self.finish()


class InvitationAcceptHandler(WorkbenchHandler):
    """Accept an invitation addressed to you: you join the team or the workspace."""

    auth_resource = "workbench:users"

    @operation(
        "Accept an invitation to me: I join the team or the workspace", response=InvitationInfo
    )
    @web.authenticated
    @authorized
    async def post(self, invitation_id: str) -> None:
        self.actor.require_full_scope()
        invitations = self.workbench.invitations
        self.reply(await self.run(invitations.accept, self.actor, int(invitation_id)))


class InvitationDeclineHandler(WorkbenchHandler):
    auth_resource = "workbench:users"

    @operation("Decline an invitation to me", response=InvitationInfo)
    @web.authenticated
    @authorized
    async def post(self, invitation_id: str) -> None:
        self.actor.require_full_scope()
        invitations = self.workbench.invitations
        self.reply(await self.run(invitations.decline, self.actor, int(invitation_id)))


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
