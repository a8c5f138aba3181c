"""Users, API tokens and teams over REST (the service: :mod:`workbench.users`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workbench.enums import Role


class UserInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    created_at: datetime


class TokenInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class NewToken(TokenInfo):
    """A just-created token: the only time its ``secret`` is available."""

    secret: str


class NewUser(UserInfo):
    """A just-added user with their first API token (shown this once)."""

    token: str


class TeamInfo(BaseModel):
    id: int
    name: str
    description: str
    members: dict[str, Role]
    #: invited, not members until they accept
    invited: list[str] = []
