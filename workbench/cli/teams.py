"""``workbench team`` and ``workbench invitation``: teams, and the invitations to teams
and workspaces (through the REST API)."""

from __future__ import annotations

import click

from workbench.cli.common import client, friendly, id_command
from workbench.client import WorkbenchClient

team = click.Group("team", help="Teams (through the REST API).")


@team.command("create")
@click.argument("name")
@click.option("--description", default="")
@friendly
def team_create(name: str, description: str) -> None:
    """Create a team; you become its admin."""
    with client() as c:
        t = c.create_team(name, description)
    click.echo(f"team {t.id} {t.name}")


@id_command(team, "add", "team_id")
@click.argument("username")
def team_add(c: WorkbenchClient, team_id: int, username: str) -> None:
    """Invite USERNAME to a team you administer (a member once they accept)."""
    t = c.add_team_member(team_id, username)
    if username in t.members:
        click.echo(f"{username} is a member of team {t.name} already")
    else:
        click.echo(
            f"invitation sent to {username}: a member of team {t.name} once they accept it "
            "(`workbench invitation accept`)"
        )


@team.command("list")
@friendly
def team_list() -> None:
    """The teams you belong to."""
    with client() as c:
        for t in c.teams():
            click.echo(f"{t.id:>4}  {t.name:<24} {', '.join(t.members)}")


invitation = click.Group(
    "invitation", help="Invitations to teams and workspaces: nobody is a member until they accept."
)


@invitation.command("list")
@friendly
def invitation_list() -> None:
    """The invitations to you, and those you sent."""
    with client() as c:
        me = c.me().username
        for i in c.invitations():
            who = f"from {i.inviter}" if i.user == me else f"to {i.user} (sent)"
            click.echo(f"{i.id:>4}  {i.kind} {i.name} ({i.target_id}) {who}")


@id_command(invitation, "accept", "invitation_id")
def invitation_accept(c: WorkbenchClient, invitation_id: int) -> None:
    """Accept an invitation: you join the team or the workspace."""
    i = c.accept_invitation(invitation_id)
    click.echo(f"joined {i.kind} {i.name} ({i.target_id})")


@id_command(invitation, "decline", "invitation_id")
def invitation_decline(c: WorkbenchClient, invitation_id: int) -> None:
    """Decline an invitation addressed to you."""
    i = c.decline_invitation(invitation_id)
    click.echo(f"declined the invitation to {i.kind} {i.name}")


@id_command(invitation, "cancel", "invitation_id")
def invitation_cancel(c: WorkbenchClient, invitation_id: int) -> None:
    """Withdraw an invitation you sent."""
    c.cancel_invitation(invitation_id)
    click.echo(f"cancelled invitation {invitation_id}")
