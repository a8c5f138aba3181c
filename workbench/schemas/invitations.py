"""Invitations over REST (the service: :mod:`workbench.invitations`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class InvitationInfo(BaseModel):
    id: int
    #: what it invites to: a team or a workspace, its id and its name
    kind: Literal["team", "workspace"]
    target_id: int
    name: str
    #: the invitee, and who invited them
    user: str
    inviter: str
    #: pending while listed; accepted, declined or cancelled in the answer that ends it
    state: Literal["pending", "accepted", "declined", "cancelled"] = "pending"
    created_at: datetime
