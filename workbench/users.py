"""Users, API tokens and teams.

A token's secret is ``wb_`` followed by 43 URL-safe characters; the registry keeps only its
SHA-256, so a leaked database does not leak working tokens. The secret is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.enums import Role
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from workbench.invitations import invite, invited
from workbench.registry.db import Registry
from workbench.registry.models import ApiToken, Team, TeamMember, User
from workbench.registry.unique import flush_unique
from workbench.schemas.common import from_row
from workbench.schemas.users import NewToken, NewUser, TeamInfo, TokenInfo, UserInfo

TOKEN_PREFIX = "wb_"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user behind a request, resolved once per request."""

    id: int
    username: str
    role: Role
    scope: str = "full"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_full_scope(self) -> None:
        """Refuse account management to narrower tokens (a workspace container's)."""
        if self.scope != "full":
            raise PermissionDenied(
                f"A {self.scope} token cannot manage tokens, users or teams; do this with "
                "your own login or a token from `workbench token create`.",
                scope=self.scope,
            )


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def username_of(s: Session, user_id: int) -> str:
    """The username of user ``user_id``, as an info names an owner ("?" if there is none)."""
    user = s.get(User, user_id)
    return user.username if user else "?"


def _actor(user: User, scope: str = "full") -> Actor:
    return Actor(id=user.id, username=user.username, role=user.role, scope=scope)


class TokenOptions(TypedDict, total=False):
    """The keywords of :meth:`UserService.create_token`, which ``replace_token`` passes on."""

    scope: str
    expires_in: timedelta | None


class UserService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # --- users ----------------------------------------------------------------------------

    def add_user(
        self, username: str, *, role: Role = Role.MEMBER, display_name: str = ""
    ) -> UserInfo:
        if not USERNAME.match(username):
            raise InvalidInput(
                f"Invalid username {username!r}: use 1-64 lowercase letters, digits, "
                "'.', '_' or '-', starting with a letter or digit.",
                field="username",
            )
        with self.registry.session() as s:

            def check() -> None:
                if s.scalar(sa.select(User).where(User.username == username)):
                    raise Conflict(f"User {username!r} already exists.", username=username)

            check()
            user = User(username=username, role=role, display_name=display_name or username)
            s.add(user)
            flush_unique(s, "uq_users_username", check)
            return UserInfo.model_validate(user)

    def add_user_with_token(
        self, username: str, *, role: Role = Role.MEMBER, display_name: str = ""
    ) -> NewUser:
        info = self.add_user(username, role=role, display_name=display_name)
        token = self.create_token(info.id, "first")
        return NewUser(**info.model_dump(), token=token.secret)

    def ensure_user(self, username: str, *, role: Role = Role.MEMBER) -> Actor:
        """The user named ``username``, created with ``role`` if it does not exist yet."""
        with self.registry.session() as s:
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is None:
                if not USERNAME.match(username):
                    raise InvalidInput(f"Invalid username {username!r}.", field="username")
                user = User(username=username, role=role, display_name=username)
                s.add(user)
                s.flush()
            return _actor(user)

    def ensure_owner(self, username: str) -> Actor:
        """The server owner's user; the first one of a registry without admins is admin."""
        with self.registry.session() as s:
            has_admin = s.scalar(sa.select(sa.func.count()).where(User.role == Role.ADMIN))
        return self.ensure_user(username, role=Role.MEMBER if has_admin else Role.ADMIN)

    def find(self, username: str) -> Actor | None:
        with self.registry.session() as s:
            user = s.scalar(sa.select(User).where(User.username == username, User.active.is_(True)))
            return _actor(user) if user else None

    def list_users(self) -> list[UserInfo]:
        with self.registry.session() as s:
            rows = s.scalars(sa.select(User).order_by(User.username))
            return [UserInfo.model_validate(u) for u in rows]

    def get_user(self, user_id: int) -> UserInfo:
        with self.registry.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound.entity("user", user_id)
            return UserInfo.model_validate(user)

    def set_role(self, actor: Actor, username: str, role: Role) -> UserInfo:
        if not actor.is_admin:
            raise PermissionDenied("Only admins can change roles.")
        with self.registry.session() as s:
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is None:
                raise NotFound.entity("user", username)
            user.role = role
            s.flush()
            return UserInfo.model_validate(user)

    # --- tokens ---------------------------------------------------------------------------

    def create_token(
        self,
        user_id: int,
        name: str,
        *,
        scope: str = "full",
        expires_in: timedelta | None = None,
    ) -> NewToken:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.registry.session() as s:
            if s.get(User, user_id) is None:
                raise NotFound.entity("user", user_id)
            token = ApiToken(
                user_id=user_id,
                name=name,
                prefix=secret[:10],
                token_hash=hash_token(secret),
                scope=scope,
                expires_at=datetime.now(UTC) + expires_in if expires_in else None,
            )
            s.add(token)
            s.flush()
            return NewToken.model_validate(
                {**TokenInfo.model_validate(token).model_dump(), "secret": secret}
            )

    def revoke_named(self, user_id: int, name: str) -> None:
        """Revoke the user's tokens called ``name`` (e.g. a stopped workspace's)."""
        with self.registry.session() as s:
            for token in s.scalars(
                sa.select(ApiToken).where(
                    ApiToken.user_id == user_id,
                    ApiToken.name == name,
                    ApiToken.revoked_at.is_(None),
                )
            ):
                token.revoked_at = datetime.now(UTC)

    def revoke_scoped(self, scope: str, user_id: int | None = None) -> None:
        """Revoke every live token of ``scope`` (only ``user_id``'s, if given): a stopped
        or deleted workspace's tokens, those of a member who leaves it."""
        with self.registry.session() as s:
            query = sa.select(ApiToken).where(
                ApiToken.scope == scope, ApiToken.revoked_at.is_(None)
            )
            if user_id is not None:
                query = query.where(ApiToken.user_id == user_id)
            for token in s.scalars(query):
                token.revoked_at = datetime.now(UTC)

    def replace_token(self, user_id: int, name: str, **options: Unpack[TokenOptions]) -> NewToken:
        """Revoke the user's tokens called ``name`` and create a new one (no pile-up): a
        running workspace's, ``workbench lab``'s, a Jupyter server's session token. The
        ``options`` are :meth:`create_token`'s."""
        self.revoke_named(user_id, name)
        return self.create_token(user_id, name, **options)

    def authenticate(self, secret: str) -> Actor:
        """The actor a token secret stands for; :class:`Unauthenticated` if it is not valid."""
        if not secret.startswith(TOKEN_PREFIX):
            raise Unauthenticated("Not a Workbench token.")
        now = datetime.now(UTC)
        with self.registry.session() as s:
            token = s.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
            if token is None or token.revoked_at is not None or not token.user.active:
                raise Unauthenticated(
                    "The token is unknown or revoked; create a new one with "
                    "`workbench token create`."
                )
            expires = token.expires_at
            if expires is not None and expires.replace(tzinfo=expires.tzinfo or UTC) <= now:
                raise Unauthenticated("The token has expired; create a new one.")
            token.last_used_at = now
            return _actor(token.user, token.scope)

    def list_tokens(self, actor: Actor) -> list[TokenInfo]:
        with self.registry.session() as s:
            rows = s.scalars(
                sa.select(ApiToken)
                .where(ApiToken.user_id == actor.id, ApiToken.revoked_at.is_(None))
                .order_by(ApiToken.id)
            )
            return [TokenInfo.model_validate(t) for t in rows]

    def revoke_token(self, actor: Actor, token_id: int) -> None:
        with self.registry.session() as s:
            token = s.get(ApiToken, token_id)
            if token is None or token.user_id != actor.id or token.revoked_at is not None:
                raise NotFound.entity("token", token_id)
            token.revoked_at = datetime.now(UTC)

    # --- teams ----------------------------------------------------------------------------

    def create_team(self, actor: Actor, name: str, description: str = "") -> TeamInfo:
        with self.registry.session() as s:

            def check() -> None:
                if s.scalar(sa.select(Team).where(Team.name == name)):
                    raise Conflict(f"Team {name!r} already exists.", name=name)

            check()
            team = Team(name=name, description=description)
            s.add(team)
            flush_unique(s, "uq_teams_name", check)
            s.add(TeamMember(team_id=team.id, user_id=actor.id, role=Role.ADMIN))
            s.flush()
            return self._team_info(s, team)

    def add_team_member(self, actor: Actor, team_id: int, username: str) -> TeamInfo:
        """Invite ``username`` to the team: a member once they accept (:mod:`invitations`);
        the team lists them under ``invited`` until then."""
        with self.registry.session() as s:
            team = s.get(Team, team_id)
            membership = s.get(TeamMember, (team_id, actor.id))
            if team is None or membership is None:
                raise NotFound.entity("team", team_id)
            if membership.role is not Role.ADMIN and not actor.is_admin:
                raise PermissionDenied("Only the team's admins can add members.")
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is None:
                raise NotFound.entity("user", username)
            invite(s, user_id=user.id, inviter_id=actor.id, team_id=team_id)
            return self._team_info(s, team)

    def list_teams(self, actor: Actor) -> list[TeamInfo]:
        with self.registry.session() as s:
            teams = s.scalars(
                sa.select(Team)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(TeamMember.user_id == actor.id)
                .order_by(Team.name)
            )
            return [self._team_info(s, t) for t in teams]

    @staticmethod
    def _team_info(s: sa.orm.Session, team: Team) -> TeamInfo:
        rows = s.execute(
            sa.select(User.username, TeamMember.role)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id == team.id)
        )
        return from_row(
            TeamInfo, team, members={u: r for u, r in rows}, invited=invited(s, team_id=team.id)
        )
