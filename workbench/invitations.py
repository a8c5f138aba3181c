"""Invitations: nobody is made a member of a team or a workspace without saying yes.

A team admin adding someone to a team, or a workspace's owner adding someone to the
workspace, makes an invitation (:func:`invite`), not a membership: until the invitee
accepts it they see nothing of the team's or the workspace's (a pending invitee is no
member anywhere the access rules look). The invitee lists theirs
(``GET /invitations``) and accepts or declines; the one who invited, a team's admins, a
workspace's owner or a server admin can cancel it. Accepting makes the membership;
declining and cancelling delete the invitation and leave nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.enums import Role
from workbench.errors import NotFound, PermissionDenied
from workbench.registry.db import Registry
from workbench.registry.models import (
    Invitation,
    Team,
    TeamMember,
    User,
    Workspace,
    WorkspaceMember,
)
from workbench.schemas.invitations import InvitationInfo

if TYPE_CHECKING:
    from workbench.users import Actor


def invite(
    s: Session,
    *,
    user_id: int,
    inviter_id: int,
    team_id: int | None = None,
    workspace_id: int | None = None,
) -> None:
    """Invite ``user_id`` to the team or the workspace (in the caller's transaction); a
    member already, or invited already, is left as they are."""
    if team_id is not None:
        if s.get(TeamMember, (team_id, user_id)) is not None:
            return
        pending = sa.select(Invitation.id).where(
            Invitation.team_id == team_id, Invitation.user_id == user_id
        )
    else:
        assert workspace_id is not None
        if s.get(WorkspaceMember, (workspace_id, user_id)) is not None:
            return
        pending = sa.select(Invitation.id).where(
            Invitation.workspace_id == workspace_id, Invitation.user_id == user_id
        )
    if s.scalar(pending) is None:
        s.add(
            Invitation(
                team_id=team_id, workspace_id=workspace_id, user_id=user_id, inviter_id=inviter_id
            )
        )
        s.flush()


def invited(
    s: Session, *, team_id: int | None = None, workspace_id: int | None = None
) -> list[str]:
    """The usernames with a pending invitation to the team or the workspace."""
    where = (
        Invitation.team_id == team_id
        if team_id is not None
        else Invitation.workspace_id == workspace_id
    )
    return list(
        s.scalars(
            sa.select(User.username)
            .join(Invitation, Invitation.user_id == User.id)
            .where(where)
            .order_by(User.username)
        )
    )


class InvitationService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def list(self, actor: Actor) -> list[InvitationInfo]:
        """The invitations to the actor and those the actor sent, oldest first."""
        with self.registry.session() as s:
            rows = s.scalars(
                sa.select(Invitation)
                .where(sa.or_(Invitation.user_id == actor.id, Invitation.inviter_id == actor.id))
                .order_by(Invitation.id)
            )
            return [_info(s, row) for row in rows]

    def accept(self, actor: Actor, invitation_id: int) -> InvitationInfo:
        """The invitee joins the team (as a member) or the workspace."""
        with self.registry.session() as s:
            row = self._addressed(s, actor, invitation_id)
            info = _info(s, row, "accepted")
            if row.team_id is not None:
                s.add(TeamMember(team_id=row.team_id, user_id=row.user_id, role=Role.MEMBER))
            else:
                assert row.workspace_id is not None
                s.add(WorkspaceMember(workspace_id=row.workspace_id, user_id=row.user_id))
            s.delete(row)
            return info

    def decline(self, actor: Actor, invitation_id: int) -> InvitationInfo:
        with self.registry.session() as s:
            row = self._addressed(s, actor, invitation_id)
            info = _info(s, row, "declined")
            s.delete(row)
            return info

    def cancel(self, actor: Actor, invitation_id: int) -> InvitationInfo:
        """Withdraw an invitation: its inviter, the team's admins, the workspace's owner or
        a server admin (the invitee declines instead)."""
        with self.registry.session() as s:
            row = s.get(Invitation, invitation_id)
            if row is None or not (
                actor.id == row.inviter_id or actor.is_admin or _manages(s, actor, row)
            ):
                if row is not None and row.user_id == actor.id:
                    raise PermissionDenied(
                        f"Invitation {invitation_id} is addressed to you: decline it "
                        f"(POST /invitations/{invitation_id}/decline) rather than cancel it."
                    )
                raise NotFound.entity("invitation", invitation_id)
            info = _info(s, row, "cancelled")
            s.delete(row)
            return info

    @staticmethod
    def _addressed(s: Session, actor: Actor, invitation_id: int) -> Invitation:
        """An invitation to the actor; anyone else's is 404, as if it did not exist."""
        row = s.get(Invitation, invitation_id)
        if row is None or row.user_id != actor.id:
            raise NotFound.entity("invitation", invitation_id)
        return row


def _manages(s: Session, actor: Actor, row: Invitation) -> bool:
    """Whether the actor administers the team, or owns the workspace, it invites to."""
    if row.team_id is not None:
        membership = s.get(TeamMember, (row.team_id, actor.id))
        return membership is not None and membership.role is Role.ADMIN
    workspace = s.get(Workspace, row.workspace_id)
    return workspace is not None and workspace.owner_id == actor.id


def _info(s: Session, row: Invitation, state: str = "pending") -> InvitationInfo:
    user, inviter = s.get_one(User, row.user_id), s.get_one(User, row.inviter_id)
    if row.team_id is not None:
        kind, target_id, name = "team", row.team_id, s.get_one(Team, row.team_id).name
    else:
        assert row.workspace_id is not None
        workspace = s.get_one(Workspace, row.workspace_id)
        kind, target_id, name = "workspace", workspace.id, workspace.name
    return InvitationInfo.model_validate(
        {
            "id": row.id,
            "kind": kind,
            "target_id": target_id,
            "name": name,
            "user": user.username,
            "inviter": inviter.username,
            "state": state,
            "created_at": row.created_at,
        }
    )
